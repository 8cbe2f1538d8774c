"""Every failure a user can cause gives an LmsegError whose message names the file or folder."""

from __future__ import annotations

import re

import numpy as np
import pytest
from PIL import Image

from lmseg.data import folder_dataset, get_benchmark, open_dataset
from lmseg.errors import LmsegError
from lmseg.vocab import parse_class_list
from tests.data import samples as S

ADE = "ADEChallengeData2016"


def raises(match: str):
    return pytest.raises(LmsegError, match=re.escape(match))


# ------------------------------------------------------------------------ folders / names


def test_missing_root(tmp_path):
    with raises(f"datasets root {tmp_path / 'nope'} does not exist"):
        open_dataset("ade150", tmp_path / "nope")


def test_no_prepared_layout_lists_what_was_expected(tmp_path):
    with pytest.raises(LmsegError) as info:
        open_dataset("ade150", tmp_path)
    message = str(info.value)
    assert "no prepared label folder found" in message
    assert f"{ADE}/annotations_detectron2/validation" in message and f"{ADE}/annotations/validation" in message
    assert "prepare_data" in message


def test_missing_image_folder(tmp_path):
    S.build_ade150(tmp_path)
    for image in (tmp_path / ADE / "images/validation").iterdir():
        image.unlink()
    (tmp_path / ADE / "images/validation").rmdir()
    with raises(f"image folder: {tmp_path / ADE / 'images/validation'} does not exist"):
        open_dataset("ade150", tmp_path)


def test_unknown_dataset_and_layout(tmp_path):
    with raises("unknown dataset 'ade151'; known datasets: ade150, ade847"):
        open_dataset("ade151", tmp_path)
    with raises("ADE20K-150 has no layout 'catseg'; known layouts: detectron2, mmseg"):
        open_dataset("ade150", tmp_path, layout="catseg")


def test_missing_split_list(tmp_path):
    S.build_voc(tmp_path)
    with raises(f"split list {tmp_path / 'VOCdevkit/VOC2012/ImageSets/Segmentation/train.txt'} does not exist"):
        open_dataset("voc21", tmp_path, split="train")


# ------------------------------------------------------------------------------ pairing


@pytest.mark.parametrize(("source", "place", "message"), [
    (lambda image: image, "images/validation/ADE_val_00000099.jpg", "1 image(s) in {folder} have no label file (<id>.png)"),
    (S.label_of, "annotations/validation/ADE_val_00000077.png", "1 label file(s) in {folder} have no image"),
], ids=["image-without-label", "label-without-image"])
def test_an_orphan_file_is_counted_and_named(source, place, message, tmp_path):
    S.build_ade150(tmp_path)
    orphan = S.place(source(S.images(S.ADE150)[0]), tmp_path / ADE / place)
    with raises(message.format(folder=orphan.parent)):
        open_dataset("ade150", tmp_path)
    with raises(str(orphan)):
        open_dataset("ade150", tmp_path)


def test_many_orphans_are_counted_and_a_few_named(tmp_path):
    S.build_ade150(tmp_path)
    for n in range(9):
        S.place(S.images(S.ADE150)[0], tmp_path / ADE / f"images/validation/extra_{n}.jpg")
    with raises("9 image(s)"):
        open_dataset("ade150", tmp_path)
    with raises("(and 4 more)"):
        open_dataset("ade150", tmp_path)


def test_listed_id_without_files(tmp_path):
    S.build_voc(tmp_path)
    ids = tmp_path / "VOCdevkit/VOC2012/ImageSets/Segmentation/val.txt"
    ids.write_text(ids.read_text() + "2012_999999\n")
    with raises(f"1 image(s) listed in {ids} are missing: {tmp_path / 'VOCdevkit/VOC2012/JPEGImages/2012_999999.jpg'}"):
        open_dataset("voc21", tmp_path)


def test_two_images_with_one_stem(tmp_path):
    image = S.images(S.ADE150)[0]
    S.place(image, tmp_path / "images" / image.name)
    S.place(image, tmp_path / "images" / f"{image.stem}.png")
    S.place(S.label_of(image), tmp_path / "labels" / f"{image.stem}.png")
    with raises(f"two image files for sample '{image.stem}'"):
        folder_dataset(tmp_path / "images", tmp_path / "labels", ["a"])


def test_empty_label_folder(tmp_path):
    (tmp_path / "imgs").mkdir()
    (tmp_path / "labels").mkdir()
    with raises(f"no label files (*.png) found in {tmp_path / 'labels'}"):
        folder_dataset(tmp_path / "imgs", tmp_path / "labels", ["a", "b"])


# ------------------------------------------------------------------------- file contents


def test_truncated_image_is_named(tmp_path):
    S.build_ade150(tmp_path)
    image = tmp_path / ADE / "images/validation/ADE_val_00000002.jpg"
    image.write_bytes(image.read_bytes()[: image.stat().st_size // 2])
    dataset = open_dataset("ade150", tmp_path)
    dataset[0]  # the others still load
    with raises(f"cannot read image {image}"):
        dataset[1]
    with raises("truncated"):
        dataset[1]


def test_truncated_label_is_named(tmp_path):
    S.build_ade150(tmp_path)
    label = tmp_path / ADE / "annotations/validation/ADE_val_00000003.png"
    label.write_bytes(label.read_bytes()[:300])
    with raises(f"cannot read label file {label}"):
        open_dataset("ade150", tmp_path)[2]


def test_not_an_image(tmp_path):
    S.build_ade150(tmp_path)
    image = tmp_path / ADE / "images/validation/ADE_val_00000001.jpg"
    image.write_text("this is not a JPEG")
    with raises(f"cannot read image {image}"):
        open_dataset("ade150", tmp_path)[0]


def test_colour_label_is_rejected(tmp_path):
    S.build_ade150(tmp_path)
    label = tmp_path / ADE / "annotations/validation/ADE_val_00000001.png"
    Image.open(label).convert("RGB").save(label)
    with raises(f"label file {label} has image mode 'RGB' (3 channels); expected a single-channel index image"):
        open_dataset("ade150", tmp_path)[0]


def test_label_value_outside_class_range_names_file_and_values(tmp_path):
    S.build_ade150(tmp_path)
    label = tmp_path / ADE / "annotations/validation/ADE_val_00000002.png"
    values = S.stored(label)
    values[:5, :5] = 200
    values[-1, -1] = 151
    S.save_label(values, label)
    with raises(f"{label}: label values outside the class range: 151, 200. This dataset has 150 classes"):
        open_dataset("ade150", tmp_path).read_label(1)


def test_image_and_label_sizes_differ(tmp_path):
    S.build_ade150(tmp_path)
    label = tmp_path / ADE / "annotations/validation/ADE_val_00000001.png"
    S.save_label(S.stored(label)[:-3], label)
    with raises(
        f"image {tmp_path / ADE / 'images/validation/ADE_val_00000001.jpg'} is 683x512 but its label {label} is 683x509"
    ):
        open_dataset("ade150", tmp_path)[0]


# --------------------------------------------------------------------------- class lists


def test_benchmark_with_a_class_list_of_the_wrong_length(tmp_path):
    S.build_ade150(tmp_path)
    with raises("the class list 'custom-"):
        open_dataset("ade150", tmp_path, vocabulary=parse_class_list("wall,floor,sky"))
    with raises("has 3 classes but the labels have 150"):
        open_dataset("ade150", tmp_path, vocabulary=parse_class_list("wall,floor,sky"))


def test_user_folder_with_too_short_class_list_names_the_file(tmp_path):
    images, labels = tmp_path / "images", tmp_path / "labels"
    for image in S.images(S.VOC_LABELME):
        S.place(image, images / image.name)
        S.place(S.label_of(image), labels / f"{image.stem}.png")
    classes = tmp_path / "classes.txt"
    classes.write_text("\n".join(f"class{i}" for i in range(10)) + "\n")
    dataset = folder_dataset(images, labels, classes)
    assert dataset.num_classes == 10
    with pytest.raises(LmsegError) as info:
        list(dataset)
    message = str(info.value)
    assert str(labels / "2011_000003.png") in message and "15" in message
    assert "This dataset has 10 classes" in message and "class list has the right length" in message


def test_user_ignore_value_that_is_a_class(tmp_path):
    with raises("ignore values [3] are class indices of the 5-class list"):
        folder_dataset(tmp_path, tmp_path, ["a", "b", "c", "d", "e"], ignore_values=(3,))


def test_class_names_with_commas(tmp_path):
    with raises("class names must not contain ','"):
        folder_dataset(tmp_path, tmp_path, ["a", "b, c"])


def test_benchmark_vocabularies_have_the_label_space_length():
    for name in (
        "ade150",
        "ade847",
        "pc59",
        "pc459",
        "voc20",
        "voc21",
        "cocostuff171",
        "coco_object",
        "cityscapes19",
        "camvid11",
    ):
        benchmark = get_benchmark(name)
        assert len(benchmark.classes()) == benchmark.num_classes, name
        assert all(layout.label_map.num_classes == benchmark.num_classes for layout in benchmark.layouts)


def test_fully_valid_label_dtype_guard():
    from lmseg.data import LabelMap

    with raises("label values must be integers"):
        LabelMap.identity(3).decode(np.zeros((2, 2), np.float32), "x.png")

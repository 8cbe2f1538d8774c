"""Cityscapes-19 and CamVid-11 readers (street scenes).

Cityscapes (``cityscapes19``), 500 validation images, 19 train ids, 255 = ignore::

    <root>/cityscapes/
        leftImg8bit/val/frankfurt/frankfurt_000000_000294_leftImg8bit.png ...
        gtFine/val/frankfurt/frankfurt_000000_000294_gtFine_labelTrainIds.png

``*_gtFine_labelTrainIds.png`` is what cityscapesScripts' ``createTrainIdLabelImgs`` (or
mmsegmentation's converter) writes; ``python -m pipelines.prepare_data --dataset
cityscapes19`` makes it from the official ``*_gtFine_labelIds.png``. Sample ids include the
city: ``frankfurt/frankfurt_000000_000294``.

CamVid (``camvid11``), the SegNet split (367 train, 101 val, 233 test images, 480x360)::

    <root>/CamVid/
        val/0016E5_07959.png ...          # images
        valannot/0016E5_07959.png         # 0..10 = classes, 11 = void ("Unlabelled")
        test/ testannot/ train/ trainannot/

Stored 11 (SegNet's void) and 255 both decode to ignore 255. Class order: the built-in
``camvid11`` (sky, building, pole, road, pavement, tree, signsymbol, fence, car, pedestrian,
bicyclist).
"""

from __future__ import annotations

from lmseg.data.benchmark import Benchmark, builtin_classes
from lmseg.data.label_map import LabelMap
from lmseg.data.layout import Layout

__all__ = ["CAMVID11", "CITYSCAPES19"]

CITYSCAPES19 = Benchmark(
    name="cityscapes19",
    title="Cityscapes-19",
    num_classes=19,
    classes=builtin_classes("cityscapes19"),
    layouts=(
        Layout(
            name="cityscapes",
            folder="cityscapes",
            images="leftImg8bit/{split}",
            labels="gtFine/{split}",
            image_suffixes=("_leftImg8bit.png",),
            label_suffix="_gtFine_labelTrainIds.png",
            recursive=True,
            label_map=LabelMap.identity(19),
        ),
    ),
    default_split="val",
    split_sizes={"train": 2975, "val": 500},
)

CAMVID11 = Benchmark(
    name="camvid11",
    title="CamVid-11",
    num_classes=11,
    classes=builtin_classes("camvid11"),
    layouts=(
        Layout(
            name="segnet",
            folder="CamVid",
            images="{split}",
            labels="{split}annot",
            image_suffixes=(".png",),
            label_map=LabelMap.identity(11, ignore_values=(11,)),
        ),
    ),
    default_split="val",
    split_sizes={"train": 367, "val": 101, "test": 233},
)

"""Pascal VOC 2012 (20 / 21 classes) and Pascal Context (59 / 459 classes) readers.

Pascal VOC (``voc21``: background + 20 objects; ``voc20``: the 20 objects, background
ignored), 1,449 validation images, read from the official download::

    <root>/VOCdevkit/VOC2012/
        JPEGImages/2007_000033.jpg ...            # all VOC images (shared by every split)
        SegmentationClass/2007_000033.png         # palette PNG: 0 = background, 1..20, 255 = void border
        ImageSets/Segmentation/val.txt            # the split's ids, one per line
        annotations_detectron2/val/2007_000033.png  # optional, voc20 layout "detectron2" (CAT-Seg)

* ``voc21`` decodes ``SegmentationClass`` as stored (0..20, 255 ignore); class 0 is
  ``background`` (mmsegmentation order; CAT-Seg puts background last).
* ``voc20`` decodes it with reduce_zero_label (background -> ignore, 1..20 -> 0..19). CAT-Seg's
  prepared ``annotations_detectron2/val`` stores the same values; it drops images whose label
  is all background, which changes nothing in the scores because such images contribute no
  counted pixel.

Pascal Context (``pc59``, ``pc459``), 5,105 validation images of VOC 2010::

    <root>/VOCdevkit/VOC2010/
        JPEGImages/2008_000002.jpg ...                    # shared by every split
        annotations_detectron2/pc59_val/2008_000002.png   # pc59 layout "detectron2": 0..58, 255 = ignore
        annotations_detectron2/pc459_val/2008_000002.tif  # pc459: uint16 0..458 (CAT-Seg)
        SegmentationClassContext/2008_000002.png          # pc59 layout "mmseg": 0 = background, 1..59
        ImageSets/SegmentationContext/val.txt             # the mmseg split list

* In the detectron2 layouts the label folder defines the split (``JPEGImages`` holds more).
* ``python -m pipelines.prepare_data --dataset pc59`` (or ``pc459``) writes the detectron2
  layouts from the official ``trainval/*.mat`` (:mod:`lmseg.data.prepare.pascal_context`).
* ``pc459`` labels are uint16; the stored values 459 (CAT-Seg's declared ignore) and 65535
  (SAN / ov-seg) both decode to the ignore index 65535.
* Class order: the built-in ``pc59`` (CAT-Seg / SAN order; mmsegmentation's order is the same)
  and ``pc459``.
"""

from __future__ import annotations

from lmseg.data.benchmark import Benchmark, builtin_classes
from lmseg.data.label_map import LabelMap
from lmseg.data.layout import Layout

__all__ = ["PC59", "PC459", "VOC20", "VOC21"]

_VOC = "VOCdevkit/VOC2012"
_CONTEXT = "VOCdevkit/VOC2010"


def _voc_layout(label_map: LabelMap) -> Layout:
    return Layout(
        name="voc2012",
        folder=_VOC,
        images="JPEGImages",
        labels="SegmentationClass",
        ids_file="ImageSets/Segmentation/{split}.txt",
        pairing="ids",
        label_map=label_map,
    )


VOC21 = Benchmark(
    name="voc21",
    title="Pascal VOC-21",
    num_classes=21,
    classes=builtin_classes("voc21"),
    layouts=(_voc_layout(LabelMap.identity(21)),),
    default_split="val",
    split_sizes={"train": 1464, "val": 1449},
    background_index=0,
)

VOC20 = Benchmark(
    name="voc20",
    title="Pascal VOC-20",
    num_classes=20,
    classes=builtin_classes("voc20"),
    layouts=(
        Layout(
            name="detectron2",
            folder=_VOC,
            images="JPEGImages",
            labels="annotations_detectron2/{split}",
            pairing="labels",
            label_map=LabelMap.identity(20),
        ),
        _voc_layout(LabelMap.reduce_zero_label(20)),
    ),
    default_split="val",
    split_sizes={"train": 1464, "val": 1449},
)

PC59 = Benchmark(
    name="pc59",
    title="Pascal Context-59",
    num_classes=59,
    classes=builtin_classes("pc59"),
    layouts=(
        Layout(
            name="detectron2",
            folder=_CONTEXT,
            images="JPEGImages",
            labels="annotations_detectron2/pc59_{split}",
            pairing="labels",
            label_map=LabelMap.identity(59),
        ),
        Layout(
            name="mmseg",
            folder=_CONTEXT,
            images="JPEGImages",
            labels="SegmentationClassContext",
            ids_file="ImageSets/SegmentationContext/{split}.txt",
            pairing="ids",
            label_map=LabelMap.reduce_zero_label(59),
        ),
    ),
    default_split="val",
    split_sizes={"train": 4996, "val": 5105},
)

PC459 = Benchmark(
    name="pc459",
    title="Pascal Context-459",
    num_classes=459,
    classes=builtin_classes("pc459"),
    layouts=(
        Layout(
            name="detectron2",
            folder=_CONTEXT,
            images="JPEGImages",
            labels="annotations_detectron2/pc459_{split}",
            label_suffix=".tif",
            pairing="labels",
            label_map=LabelMap.identity(459, ignore_values=(459,)),
        ),
    ),
    default_split="val",
    split_sizes={"val": 5105},
)

"""COCO-Stuff-171 and COCO-Object readers (COCO 2017, 5,000 validation images).

COCO-Stuff-171 (``cocostuff171``): 171 classes (80 things then 91 stuff, the built-in
``cocostuff171`` order), 255 = ignore. Three prepared forms, tried in this order::

    <root>/coco-stuff/                             # layout "catseg" (CAT-Seg prepare_coco_stuff.py)
        images/val2017/000000000139.jpg ...
        annotations_detectron2/val2017/000000000139.png         # 0..170, 255 = ignore
    <root>/coco/                                   # layout "detectron2" (Mask2Former / MAFT)
        val2017/000000000139.jpg ...
        stuffthingmaps_detectron2/val2017/000000000139.png      # 0..170, 255 = ignore
    <root>/coco_stuff164k/                         # layout "mmseg"
        images/val2017/000000000139.jpg ...
        annotations/val2017/000000000139_labelTrainIds.png      # 0..170, 255 = ignore

COCO-Object (``coco_object``): 81 classes, 0 = background and 1..80 = the COCO thing classes
in COCO order (built-in ``coco_object80`` with ``background`` put first), as made by the
GroupViT / SCLIP conversion of COCO-Stuff (every stuff class becomes background)::

    <root>/coco_stuff164k/                         # layout "mmseg"
        images/val2017/000000000139.jpg ...
        annotations/val2017/000000000139_instanceTrainIds.png   # 0 = background, 1..80, 255 = ignore

``python -m pipelines.prepare_data --dataset cocostuff171`` / ``coco_object`` builds these from
the official ``stuffthingmaps_trainval2017.zip``.
"""

from __future__ import annotations

from lmseg.data.benchmark import Benchmark, builtin_classes, with_background
from lmseg.data.label_map import LabelMap
from lmseg.data.layout import Layout

__all__ = ["COCO_OBJECT", "COCO_STUFF171"]

COCO_STUFF171 = Benchmark(
    name="cocostuff171",
    title="COCO-Stuff-171",
    num_classes=171,
    classes=builtin_classes("cocostuff171"),
    layouts=(
        Layout(
            name="catseg",
            folder="coco-stuff",
            images="images/{split}",
            labels="annotations_detectron2/{split}",
            label_map=LabelMap.identity(171),
        ),
        Layout(
            name="detectron2",
            folder="coco",
            images="{split}",
            labels="stuffthingmaps_detectron2/{split}",
            label_map=LabelMap.identity(171),
        ),
        Layout(
            name="mmseg",
            folder="coco_stuff164k",
            images="images/{split}",
            labels="annotations/{split}",
            label_suffix="_labelTrainIds.png",
            label_map=LabelMap.identity(171),
        ),
    ),
    default_split="val2017",
    split_sizes={"train2017": 118287, "val2017": 5000},
)

COCO_OBJECT = Benchmark(
    name="coco_object",
    title="COCO-Object",
    num_classes=81,
    classes=with_background("coco_object80"),
    layouts=(
        Layout(
            name="mmseg",
            folder="coco_stuff164k",
            images="images/{split}",
            labels="annotations/{split}",
            label_suffix="_instanceTrainIds.png",
            label_map=LabelMap.identity(81),
        ),
    ),
    default_split="val2017",
    split_sizes={"train2017": 118287, "val2017": 5000},
    background_index=0,
)

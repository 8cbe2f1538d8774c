"""ADE20K-150 and ADE20K-847 readers.

ADE20K-150 (``ade150``; SceneParsing / ADEChallengeData2016, 2,000 validation images).
Two prepared forms are read; ``layout="auto"`` takes the first one present::

    <root>/ADEChallengeData2016/
        images/validation/ADE_val_00000001.jpg ...
        annotations_detectron2/validation/ADE_val_00000001.png   # layout "detectron2" (CAT-Seg)
        annotations/validation/ADE_val_00000001.png              # layout "mmseg" (official download)

* ``annotations`` (the official download) stores 0 = "other" and 1..150 = classes; it is
  decoded with reduce_zero_label (0 -> ignore 255, 1..150 -> 0..149).
* ``annotations_detectron2`` stores the reduced values already (0..149, 255 = ignore); make it
  with ``python -m pipelines.prepare_data --dataset ade150``.

ADE20K-847 (``ade847``; ADE20K 2021_17_01 full, 2,000 validation images), as prepared by the
SAN / CAT-Seg script (``python -m pipelines.prepare_data --dataset ade847`` makes it)::

    <root>/ADE20K_2021_17_01/
        images_detectron2/validation/ADE_val_00000001.jpg ...
        annotations_detectron2/validation/ADE_val_00000001.tif  # uint16, 0..846, 65535 = ignore

Decoded labels are uint16 with ignore index 65535 (class 255 is a real class here).
Class names: the built-in vocabularies ``ade150`` and ``ade847``.
"""

from __future__ import annotations

from lmseg.data.benchmark import Benchmark, builtin_classes
from lmseg.data.label_map import LabelMap
from lmseg.data.layout import Layout

__all__ = ["ADE150", "ADE847"]

ADE150 = Benchmark(
    name="ade150",
    title="ADE20K-150",
    num_classes=150,
    classes=builtin_classes("ade150"),
    layouts=(
        Layout(
            name="detectron2",
            folder="ADEChallengeData2016",
            images="images/{split}",
            labels="annotations_detectron2/{split}",
            label_map=LabelMap.identity(150),
        ),
        Layout(
            name="mmseg",
            folder="ADEChallengeData2016",
            images="images/{split}",
            labels="annotations/{split}",
            label_map=LabelMap.reduce_zero_label(150),
        ),
    ),
    default_split="validation",
    split_sizes={"training": 20210, "validation": 2000},
)

ADE847 = Benchmark(
    name="ade847",
    title="ADE20K-847",
    num_classes=847,
    classes=builtin_classes("ade847"),
    layouts=(
        Layout(
            name="detectron2",
            folder="ADE20K_2021_17_01",
            images="images_detectron2/{split}",
            labels="annotations_detectron2/{split}",
            label_suffix=".tif",
            label_map=LabelMap.identity(847),
        ),
    ),
    default_split="validation",
    split_sizes={"training": 25574, "validation": 2000},
)

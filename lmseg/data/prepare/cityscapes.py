"""Cityscapes conversion: ``*_gtFine_labelIds.png`` -> ``*_gtFine_labelTrainIds.png``.

From the official ``leftImg8bit_trainvaltest.zip`` and ``gtFine_trainvaltest.zip``::

    <raw-root>/cityscapes/leftImg8bit/val/<city>/<city>_<seq>_<frame>_leftImg8bit.png
    <raw-root>/cityscapes/gtFine/val/<city>/<city>_<seq>_<frame>_gtFine_labelIds.png
      -> <out-root>/cityscapes/gtFine/val/<city>/<city>_<seq>_<frame>_gtFine_labelTrainIds.png

labelId -> trainId as cityscapesScripts' ``labels.py`` (``tables/cityscapes_labels.tsv``):
19 evaluated classes 0..18, everything else 255. A labelId outside 0..33 is an error naming
the file. Images are hard-linked (or copied) when ``<out-root>`` differs from ``<raw-root>``.
"""

from __future__ import annotations

from pathlib import Path

from lmseg.data.driving import CITYSCAPES19
from lmseg.data.label_map import LabelMap
from lmseg.data.pairing import pair_folders
from lmseg.data.prepare.files import ConversionSummary, convert_split
from lmseg.data.prepare.tables import cityscapes_train_ids

__all__ = ["cityscapes_label_map", "prepare_cityscapes19"]

_LABEL_IDS = "_gtFine_labelIds.png"


def cityscapes_label_map() -> LabelMap:
    """labelId (0..33) -> train id 0..18 or 255."""
    table = cityscapes_train_ids()
    return LabelMap.from_mapping(
        19,
        {label_id: train_id for label_id, train_id in table.items() if train_id != 255},
        ignore_values=[label_id for label_id, train_id in table.items() if train_id == 255],
        description="Cityscapes labelId -> trainId",
    )


def prepare_cityscapes19(raw_root: Path, out_root: Path, *, split: str, overwrite: bool = False) -> ConversionSummary:
    """Write ``*_gtFine_labelTrainIds.png`` for every image of the split (module docstring)."""
    layout = CITYSCAPES19.layout("cityscapes")
    images_dir = layout.images_dir(raw_root, split)
    pairs = pair_folders(
        images_dir,
        layout.labels_dir(raw_root, split),
        label_suffix=_LABEL_IDS,
        image_suffixes=layout.image_suffixes,
        recursive=True,
    )
    return convert_split(
        pairs, images_dir, cityscapes_label_map(), layout=layout, out_root=out_root, split=split, overwrite=overwrite
    )

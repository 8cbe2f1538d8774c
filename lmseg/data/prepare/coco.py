"""COCO-Stuff conversions: stuffthingmaps -> COCO-Stuff-171 and COCO-Object label maps.

From the official ``val2017.zip`` and ``stuffthingmaps_trainval2017.zip``, unpacked as
mmsegmentation documents it (CAT-Seg's ``coco-stuff/`` folder name works too)::

    <raw-root>/coco_stuff164k/images/val2017/000000000139.jpg ...
    <raw-root>/coco_stuff164k/annotations/val2017/000000000139.png   # COCO category id - 1, 255 = unlabelled
      -> <out-root>/coco_stuff164k/annotations/val2017/000000000139_labelTrainIds.png     (cocostuff171)
      -> <out-root>/coco_stuff164k/annotations/val2017/000000000139_instanceTrainIds.png  (coco_object)

The outputs are the readers' ``mmseg`` layouts.

* COCO-Stuff-171: stored value ``category_id - 1`` -> its index in ``tables/cocostuff171_ids.tsv``
  (things 0..79, stuff 80..170); 255 and any unlisted value -> 255 (as mmsegmentation's and
  detectron2's converters).
* COCO-Object (the GroupViT / SCLIP ``convert_coco_object.py`` protocol): thing ``k`` (0..79)
  -> ``k + 1``; every stuff class -> 0 (background); **unlabelled (255) -> 0 as well** - that
  script maps it to background, and published COCO-Object numbers are computed that way.

Images are hard-linked (or copied) into ``<out-root>`` when it differs from ``<raw-root>``.
"""

from __future__ import annotations

from pathlib import Path

from lmseg.data.coco import COCO_OBJECT, COCO_STUFF171
from lmseg.data.label_map import LabelMap
from lmseg.data.layout import Layout
from lmseg.data.pairing import pair_ids, require_dir
from lmseg.data.prepare.files import ConversionSummary, convert_split
from lmseg.data.prepare.tables import cocostuff_indices
from lmseg.errors import LmsegError

__all__ = ["coco_object_label_map", "cocostuff171_label_map", "prepare_coco_object", "prepare_cocostuff171"]

_NUM_THINGS = 80


def cocostuff171_label_map() -> LabelMap:
    """stuffthingmaps value (category id - 1) -> COCO-Stuff-171 index; the rest -> 255."""
    mapping = {category_id - 1: index for category_id, index in cocostuff_indices().items()}
    return LabelMap.from_mapping(
        171, mapping, unmapped_is_ignore=True, description="COCO category id - 1 -> COCO-Stuff-171 index"
    )


def coco_object_label_map() -> LabelMap:
    """stuffthingmaps value -> COCO-Object-81: things 1..80, stuff and unlabelled 0."""
    mapping = {
        category_id - 1: index + 1 if index < _NUM_THINGS else 0 for category_id, index in cocostuff_indices().items()
    }
    mapping[255] = 0
    return LabelMap.from_mapping(
        81, mapping, description="COCO category id - 1 -> COCO-Object (things 1..80, stuff and unlabelled 0)"
    )


def prepare_cocostuff171(raw_root: Path, out_root: Path, *, split: str, overwrite: bool = False) -> ConversionSummary:
    """Write ``<id>_labelTrainIds.png`` for every image of the split (module docstring)."""
    return _prepare(raw_root, out_root, split, COCO_STUFF171.layout("mmseg"), cocostuff171_label_map(), overwrite)


def prepare_coco_object(raw_root: Path, out_root: Path, *, split: str, overwrite: bool = False) -> ConversionSummary:
    """Write ``<id>_instanceTrainIds.png`` for every image of the split (module docstring)."""
    return _prepare(raw_root, out_root, split, COCO_OBJECT.layout("mmseg"), coco_object_label_map(), overwrite)


_RAW_FOLDERS = ("coco_stuff164k", "coco-stuff")


def _raw_dataset_dir(raw_root: Path) -> Path:
    """The raw COCO-Stuff folder: ``coco_stuff164k`` or ``coco-stuff`` under ``raw_root``, or itself."""
    for name in _RAW_FOLDERS:
        if (raw_root / name).is_dir():
            return raw_root / name
    if (raw_root / "annotations").is_dir():
        return raw_root
    raise LmsegError(
        f"no COCO-Stuff download found under {raw_root}: expected {raw_root}/coco_stuff164k/images/<split> and "
        f"{raw_root}/coco_stuff164k/annotations/<split> (stuffthingmaps_trainval2017.zip unpacked into annotations/)"
    )


def _prepare(
    raw_root: Path, out_root: Path, split: str, layout: Layout, label_map: LabelMap, overwrite: bool
) -> ConversionSummary:
    raw_dir = _raw_dataset_dir(raw_root)
    images_dir = require_dir(raw_dir / "images" / split, "COCO image folder")
    ids = sorted(p.stem for p in images_dir.glob("*.jpg"))
    if not ids:
        raise LmsegError(f"no *.jpg images in {images_dir}")
    pairs = pair_ids(
        ids,
        images_dir,
        raw_dir / "annotations" / split,
        image_suffix=".jpg",
        label_suffix=".png",
        source=f"the images of {images_dir} (stuffthingmaps expected as <id>.png)",
    )
    return convert_split(
        pairs, images_dir, label_map, layout=layout, out_root=out_root, split=split, overwrite=overwrite
    )

"""Pascal Context conversions: the official per-image .mat files -> PC-59 and PC-459 label maps.

From VOC2010 (``VOCtrainval_03-May-2010.tar``) and Pascal Context's ``trainval.tar.gz``
unpacked into ``VOCdevkit/VOC2010`` (``trainval/`` and ``labels.txt`` may instead sit
directly under ``<raw-root>``)::

    <raw-root>/VOCdevkit/VOC2010/
        JPEGImages/2008_000002.jpg ...       # all VOC2010 images (shared by every split)
        ImageSets/Main/val.txt               # a split list (see below)
        trainval/2008_000002.mat             # MATLAB v5, variable LabelMap: uint16 (H, W), 0 = unlabelled, 1..459
        labels.txt                           # "1: accordion" ... "459: ..." (optional; checked when present)
      -> <out-root>/VOCdevkit/VOC2010/annotations_detectron2/pc459_val/2008_000002.tif  (pc459)
      -> <out-root>/VOCdevkit/VOC2010/annotations_detectron2/pc59_val/2008_000002.png   (pc59)

The outputs are the readers' ``detectron2`` layouts (:mod:`lmseg.data.pascal`).

* Split list: the first that exists of ``ImageSets/SegmentationContext/<split>.txt``
  (mmsegmentation), ``pascalcontext_<split>.txt`` (CAT-Seg) and ``ImageSets/Main/<split>.txt``
  (official VOC2010, whose val is the 5,105 Pascal Context validation images); the summary
  notes say which one was used.
* PC-459: stored ``v`` in 1..459 -> ``v - 1`` (0..458), unlabelled 0 -> 65535 (ignore);
  uint16 TIFF.
* PC-59: the 59 classes -> 0..58 in the built-in ``pc59`` order; unlabelled and the other
  400 classes -> 255 (ignore); uint8 PNG. pc59 class ``k`` is the pc459 class of the same
  name (``diningtable`` is pc459's ``table``), as in CAT-Seg's and mmsegmentation's scripts.
* A stored value above 459, a damaged .mat file, or a label whose size differs from its
  image's is an error naming the file. ``labels.txt``, when found, must list the built-in
  pc459 classes in order.

Reading .mat files needs scipy. Images of the split are hard-linked (or copied) into
``<out-root>`` when it differs from ``<raw-root>``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cache
from pathlib import Path

import numpy as np

from lmseg.data.image_io import image_size
from lmseg.data.label_map import LabelMap
from lmseg.data.layout import Layout
from lmseg.data.pairing import pair_from_ids
from lmseg.data.pascal import PC59, PC459
from lmseg.data.prepare.files import ConversionSummary, convert_split
from lmseg.errors import LmsegError
from lmseg.vocab import get_vocabulary

__all__ = [
    "check_labels_txt",
    "pc59_ids",
    "pc59_label_map",
    "pc459_label_map",
    "prepare_pc59",
    "prepare_pc459",
    "read_label_mat",
]

_NUM_PC459 = 459
_PC59_ALIASES = {"diningtable": "table"}  # pc59 name -> pc459 name, where they differ
_SPLIT_LISTS = ("ImageSets/SegmentationContext/{split}.txt", "pascalcontext_{split}.txt", "ImageSets/Main/{split}.txt")
_LABELS_LINE = re.compile(r"^\s*(\d+)\s*:\s*(.*?)\s*$")


def _key(name: str) -> str:
    """Class names compare lower-case without spaces (``Air Conditioner`` == ``airconditioner``)."""
    return name.lower().replace(" ", "")


@cache
def pc59_ids() -> tuple[int, ...]:
    """The 1-based pc459 class id of each pc59 class, in pc59 order (59 ids in 1..459).

    Derived from the built-in ``pc59`` and ``pc459`` vocabularies by name.

    Raises:
        LmsegError: a pc59 name has no pc459 class of the same name.
    """
    pc459 = {_key(name): index + 1 for index, name in enumerate(get_vocabulary("pc459").names)}
    names = get_vocabulary("pc59").names
    missing = [name for name in names if _key(_PC59_ALIASES.get(name, name)) not in pc459]
    if missing:
        raise LmsegError(f"pc59 class(es) {', '.join(missing)} have no pc459 class of the same name")
    return tuple(pc459[_key(_PC59_ALIASES.get(name, name))] for name in names)


def pc459_label_map() -> LabelMap:
    """LabelMap value 1..459 -> 0..458, unlabelled 0 (and 65535) -> 65535; 460..65534 are errors."""
    return LabelMap.reduce_zero_label(_NUM_PC459)


def pc59_label_map() -> LabelMap:
    """LabelMap value -> pc59 index 0..58, other classes and unlabelled 0 -> 255; above 459: errors."""
    return LabelMap.from_mapping(
        59,
        {pc459_id: index for index, pc459_id in enumerate(pc59_ids())},
        ignore_values=range(_NUM_PC459 + 1),
        description="Pascal Context class id (1..459) -> PC-59 index, the other classes ignored",
    )


def read_label_mat(path: Path) -> np.ndarray:
    """The ``LabelMap`` variable of a Pascal Context .mat file.

    Returns:
        ``(H, W)`` integer array as stored (uint16 in the release): 0 = unlabelled, 1..459.

    Raises:
        LmsegError: scipy is missing, or the file is unreadable, lacks ``LabelMap``, or holds
            something other than a 2-D integer array.
    """
    try:
        from scipy.io import loadmat
    except ImportError:
        raise LmsegError(
            "reading Pascal Context .mat files needs scipy: pip install scipy (it is in requirements/vision.txt)"
        ) from None
    try:
        contents = loadmat(path, variable_names=["LabelMap"])
    except Exception as exc:  # noqa: BLE001 - scipy raises many exception types on damaged files
        raise LmsegError(
            f"cannot read {path}: {type(exc).__name__}: {exc} (is the file truncated or not a MATLAB .mat file?)"
        ) from None
    if "LabelMap" not in contents:
        raise LmsegError(f"{path} has no variable 'LabelMap' (is it a Pascal Context trainval .mat file?)")
    label = np.asarray(contents["LabelMap"])
    if label.ndim != 2 or not np.issubdtype(label.dtype, np.integer):
        raise LmsegError(f"{path}: LabelMap is {label.dtype} {label.shape}; expected a 2-D integer array")
    return label


def check_labels_txt(path: Path) -> None:
    """Check that ``labels.txt`` (lines ``<id>: <name>``) lists the built-in pc459 classes in order.

    Raises:
        LmsegError: naming the file, the first differing line, and both names.
    """
    expected = get_vocabulary("pc459").names
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    for line_no, line in enumerate(lines, start=1):
        match = _LABELS_LINE.match(line)
        if match is None or int(match.group(1)) != line_no:
            raise LmsegError(f"{path}, line {line_no}: {line.strip()!r} is not '{line_no}: <class name>'")
        if line_no <= len(expected) and _key(match.group(2)) != _key(expected[line_no - 1]):
            raise LmsegError(
                f"{path}, line {line_no}: class {match.group(2)!r}, but the built-in pc459 class {line_no} is "
                f"{expected[line_no - 1]!r}; this download's class order differs from the one lmseg evaluates with"
            )
    if len(lines) != len(expected):
        raise LmsegError(f"{path} lists {len(lines)} classes; Pascal Context has {len(expected)}")


def prepare_pc459(raw_root: Path, out_root: Path, *, split: str, overwrite: bool = False) -> ConversionSummary:
    """Write ``annotations_detectron2/pc459_<split>/<id>.tif`` for the split (module docstring)."""
    return _prepare(raw_root, out_root, split, PC459.layout("detectron2"), pc459_label_map(), overwrite)


def prepare_pc59(raw_root: Path, out_root: Path, *, split: str, overwrite: bool = False) -> ConversionSummary:
    """Write ``annotations_detectron2/pc59_<split>/<id>.png`` for the split (module docstring)."""
    return _prepare(raw_root, out_root, split, PC59.layout("detectron2"), pc59_label_map(), overwrite)


def _first(candidates: list[Path], is_there: Callable[[Path], bool]) -> Path | None:
    return next((path for path in candidates if is_there(path)), None)


def _prepare(
    raw_root: Path, out_root: Path, split: str, layout: Layout, label_map: LabelMap, overwrite: bool
) -> ConversionSummary:
    voc_dir = layout.dataset_dir(raw_root)
    summary = ConversionSummary()
    mats_dir = _first([voc_dir / "trainval", raw_root / "trainval"], Path.is_dir)
    if mats_dir is None:
        raise LmsegError(
            f"no Pascal Context label folder: neither {voc_dir / 'trainval'} nor {raw_root / 'trainval'} exists "
            "(unpack Pascal Context's trainval.tar.gz into VOCdevkit/VOC2010)"
        )
    labels_txt = _first([voc_dir / "labels.txt", raw_root / "labels.txt"], Path.is_file)
    if labels_txt is None:
        summary.notes.append(f"no labels.txt in {voc_dir} or {raw_root}: class order not checked against the download")
    else:
        check_labels_txt(labels_txt)
        summary.notes.append(f"{labels_txt} agrees with the built-in pc459 class order")
    ids_file = _first([voc_dir / pattern.format(split=split) for pattern in _SPLIT_LISTS], Path.is_file)
    if ids_file is None:
        listed = ", ".join(str(voc_dir / pattern.format(split=split)) for pattern in _SPLIT_LISTS)
        raise LmsegError(f"no split list for {split!r}: none of {listed} exists")
    summary.notes.append(f"split list: {ids_file}")
    images_dir = layout.images_dir(raw_root, split)
    pairs = pair_from_ids(ids_file, images_dir, mats_dir, image_suffix=".jpg", label_suffix=".mat")
    image_of = {p.label_path: p.image_path for p in pairs}
    return convert_split(
        pairs, images_dir, label_map, layout=layout, out_root=out_root, split=split, overwrite=overwrite,
        read=lambda mat_path: _read_sized(mat_path, image_of[mat_path]), summary=summary,
    )


def _read_sized(mat_path: Path, image_path: Path) -> np.ndarray:
    """:func:`read_label_mat`, checked against the image's ``(H, W)`` (read from its header)."""
    label = read_label_mat(mat_path)
    height, width = image_size(image_path)
    if label.shape != (height, width):
        raise LmsegError(f"{mat_path} is {label.shape[1]}x{label.shape[0]} but {image_path} is {width}x{height}")
    return label

"""ADE20K conversions: ADE-150 reduce-zero-label, and ADE20K-2021 -> A-847 TIFFs.

ADE-150, from the official ``ADEChallengeData2016.zip``::

    <raw-root>/ADEChallengeData2016/images/validation/*.jpg
    <raw-root>/ADEChallengeData2016/annotations/validation/*.png     # 0 = other, 1..150
      -> <out-root>/ADEChallengeData2016/annotations_detectron2/validation/*.png  # 0..149, 255

(images are hard-linked, or copied, into ``<out-root>`` when it differs from ``<raw-root>``).

A-847, from the official ADE20K 2021_17_01 release (as the SAN / CAT-Seg script does it)::

    <raw-root>/ADE20K_2021_17_01/images/ADE/validation/<scene>/.../ADE_val_00000001.jpg
    <raw-root>/ADE20K_2021_17_01/images/ADE/validation/<scene>/.../ADE_val_00000001_seg.png
      -> <out-root>/ADE20K_2021_17_01/images_detectron2/validation/ADE_val_00000001.jpg
      -> <out-root>/ADE20K_2021_17_01/annotations_detectron2/validation/ADE_val_00000001.tif

The class of a pixel in ``*_seg.png`` is ``R // 10 * 256 + G``; it maps to the A-847 train id
through ``tables/ade847_ids.tsv``, and classes outside the 847 become 65535 (ignore). Images
whose shorter side exceeds ``max_size`` (512 by default, as in SAN / CAT-Seg) are shrunk to it:
the image (as RGB) with OpenCV-identical bilinear resizing and re-encoded as a JPEG with
Pillow's defaults, the label with nearest-neighbour resizing. ``max_size=0`` keeps the full
resolution and links the original images. The ``index_ade20k.pkl`` of the release is not
needed (and not unpickled): the split's images are found by walking the folder.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from lmseg.data.ade import ADE150, ADE847
from lmseg.data.image_io import image_size, read_image, write_label_file
from lmseg.data.label_map import LabelMap
from lmseg.data.pairing import require_dir
from lmseg.data.prepare.files import ConversionSummary, convert_split, link_or_copy
from lmseg.data.prepare.resize import resize_bilinear, resize_nearest, shorter_side_size
from lmseg.data.prepare.tables import ade847_train_ids
from lmseg.errors import LmsegError
from lmseg.io.atomic import atomic_path

__all__ = ["ade847_label_map", "decode_ade_seg", "prepare_ade150", "prepare_ade847"]


def prepare_ade150(raw_root: Path, out_root: Path, *, split: str, overwrite: bool = False) -> ConversionSummary:
    """Write the reduce-zero-label ``annotations_detectron2`` of one split (see module docstring)."""
    raw_layout, out_layout = ADE150.layout("mmseg"), ADE150.layout("detectron2")
    pairs = raw_layout.find_pairs(raw_root, split)
    return convert_split(
        pairs, raw_layout.images_dir(raw_root, split), raw_layout.label_map,
        layout=out_layout, out_root=out_root, split=split, overwrite=overwrite,
    )


def ade847_label_map() -> LabelMap:
    """ADE20K-2021 class id -> A-847 train id; every other class id -> 65535 (ignore)."""
    return LabelMap.from_mapping(
        847, ade847_train_ids(), unmapped_is_ignore=True, description="ADE20K-2021 class id -> A-847 train id"
    )


def decode_ade_seg(path: Path) -> np.ndarray:
    """The ``(H, W)`` int32 class-id mask ``R // 10 * 256 + G`` of an ADE20K ``*_seg.png``."""
    rgb = read_image(path).astype(np.int32)
    return rgb[..., 0] // 10 * 256 + rgb[..., 1]


def prepare_ade847(
    raw_root: Path, out_root: Path, *, split: str, overwrite: bool = False, max_size: int = 512
) -> ConversionSummary:
    """Write ``images_detectron2`` and ``annotations_detectron2`` of one split (module docstring).

    Args:
        raw_root: holds ``ADE20K_2021_17_01/images/ADE/<split>``.
        out_root: where ``ADE20K_2021_17_01/images_detectron2`` etc. are written.
        split: ``validation`` or ``training``.
        overwrite: rewrite outputs that exist.
        max_size: shorter-side limit in pixels; 0 keeps the original size.
    """
    source_dir = require_dir(raw_root / "ADE20K_2021_17_01" / "images" / "ADE" / split, "ADE20K-2021 image folder")
    images = sorted(p for p in source_dir.rglob("ADE_*.jpg") if p.is_file())
    if not images:
        raise LmsegError(f"no ADE_*.jpg images found under {source_dir}")
    missing = [p for p in images if not _seg_path(p).is_file()]
    if missing:
        raise LmsegError(f"{len(missing)} image(s) have no *_seg.png beside them, e.g. {missing[0]}")
    layout = ADE847.layout("detectron2")
    images_out, labels_out = layout.images_dir(out_root, split), layout.labels_dir(out_root, split)
    label_map = ade847_label_map()
    summary = ConversionSummary()
    for image_path in images:
        image_target = images_out / image_path.name
        label_target = labels_out / f"{image_path.stem}.tif"
        if image_target.exists() and label_target.exists() and not overwrite:
            summary.skipped += 1
            continue
        _convert_one_847(image_path, image_target, label_target, label_map, max_size)
        summary.written += 1
    return summary


def _seg_path(image_path: Path) -> Path:
    return image_path.with_name(f"{image_path.stem}_seg.png")


def _convert_one_847(
    image_path: Path, image_target: Path, label_target: Path, label_map: LabelMap, max_size: int
) -> None:
    seg_path = _seg_path(image_path)
    label = label_map.decode(decode_ade_seg(seg_path), source=seg_path)
    height, width = image_size(image_path)
    if label.shape != (height, width):
        raise LmsegError(f"{seg_path} is {label.shape[1]}x{label.shape[0]} but {image_path} is {width}x{height}")
    new_size = shorter_side_size(height, width, max_size)
    if new_size is None:
        image_target.unlink(missing_ok=True)
        link_or_copy(image_path, image_target)
    else:
        _save_jpeg(resize_bilinear(read_image(image_path), new_size), image_target)
        label = resize_nearest(label, new_size)
    write_label_file(label_target, label)


def _save_jpeg(pixels: np.ndarray, target: Path) -> None:
    with atomic_path(target) as tmp:
        Image.fromarray(pixels).save(tmp, format="JPEG")

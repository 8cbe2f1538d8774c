"""Matching image files with label files, and the errors when they do not match.

Three ways to form the list of (image, label) pairs of a split:

* :func:`pair_folders` with ``require_all_images=True``: both folders hold exactly this split
  (ADE20K, COCO, Cityscapes, CamVid). Every image needs a label and every label an image.
* :func:`pair_folders` with ``require_all_images=False``: the label folder defines the split
  and the image folder is shared with other splits (Pascal Context's ``JPEGImages``). Every
  label needs an image; extra images are fine.
* :func:`pair_from_ids`: a text file lists the sample ids (VOC's ``ImageSets``). Every listed
  id needs both files.

A sample id is the file's path relative to its folder without the suffix, with ``/``
separators (``frankfurt/frankfurt_000000_000294`` for Cityscapes, ``ADE_val_00000001`` for ADE).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from lmseg.errors import LmsegError

__all__ = ["IMAGE_SUFFIXES", "Pair", "pair_folders", "pair_from_ids", "pair_ids", "require_dir"]

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
_MAX_LISTED = 5


@dataclass(frozen=True)
class Pair:
    """One labelled image on disk."""

    sample_id: str
    image_path: Path
    label_path: Path


def require_dir(path: Path, what: str) -> Path:
    """Return ``path`` if it is a folder, else raise an error that says what was expected there."""
    if not path.is_dir():
        problem = "is not a folder" if path.exists() else "does not exist"
        raise LmsegError(f"{what}: {path} {problem}")
    return path


def pair_folders(
    images_dir: Path,
    labels_dir: Path,
    *,
    label_suffix: str,
    image_suffixes: Sequence[str] = IMAGE_SUFFIXES,
    recursive: bool = False,
    require_all_images: bool = True,
) -> list[Pair]:
    """Pair the files of two folders by sample id.

    Args:
        images_dir: folder of images.
        labels_dir: folder of label maps.
        label_suffix: what follows the sample id in a label file name (``.png``,
            ``_gtFine_labelTrainIds.png``); other files in ``labels_dir`` are not labels.
        image_suffixes: what may follow the sample id in an image file name (case-insensitive).
        recursive: look into sub-folders (Cityscapes keeps one folder per city).
        require_all_images: if True, an image without a label is an error; if False it is
            skipped (the image folder is shared between splits).

    Returns:
        The pairs sorted by sample id.

    Raises:
        LmsegError: a folder is missing, labels lack images (or images lack labels), two images
            share a sample id, or no pair was found.
    """
    require_dir(images_dir, "image folder")
    require_dir(labels_dir, "label folder")
    images = _index(images_dir, image_suffixes, recursive, kind="image")
    labels = _index(labels_dir, (label_suffix,), recursive, kind="label")
    orphan_labels = sorted(labels.keys() - images.keys())
    if orphan_labels:
        raise LmsegError(
            f"{len(orphan_labels)} label file(s) in {labels_dir} have no image in {images_dir}: "
            f"{_listing(labels[k] for k in orphan_labels)}"
        )
    orphan_images = sorted(images.keys() - labels.keys())
    if orphan_images and require_all_images:
        raise LmsegError(
            f"{len(orphan_images)} image(s) in {images_dir} have no label file (<id>{label_suffix}) in "
            f"{labels_dir}: {_listing(images[k] for k in orphan_images)}"
        )
    if not labels:
        raise LmsegError(f"no label files (*{label_suffix}) found in {labels_dir}")
    return [Pair(key, images[key], labels[key]) for key in sorted(labels)]


def pair_from_ids(
    ids_file: Path,
    images_dir: Path,
    labels_dir: Path,
    *,
    image_suffix: str,
    label_suffix: str,
) -> list[Pair]:
    """Pairs for the sample ids listed one per line in ``ids_file`` (in file order).

    Raises:
        LmsegError: the ids file or a folder is missing, the list is empty, or listed images or
            labels are missing (all of them are counted, a few are named).
    """
    if not ids_file.is_file():
        raise LmsegError(f"split list {ids_file} does not exist")
    ids = [line.strip() for line in ids_file.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not ids:
        raise LmsegError(f"split list {ids_file} is empty")
    return pair_ids(
        ids, images_dir, labels_dir, image_suffix=image_suffix, label_suffix=label_suffix, source=str(ids_file)
    )


def pair_ids(
    ids: Sequence[str],
    images_dir: Path,
    labels_dir: Path,
    *,
    image_suffix: str,
    label_suffix: str,
    source: str,
) -> list[Pair]:
    """Pairs ``<images_dir>/<id><image_suffix>`` + ``<labels_dir>/<id><label_suffix>`` for each id.

    Args:
        source: where the ids came from, for error messages.

    Raises:
        LmsegError: a folder is missing, or files of listed ids are missing.
    """
    require_dir(images_dir, "image folder")
    require_dir(labels_dir, "label folder")
    pairs = [Pair(i, images_dir / f"{i}{image_suffix}", labels_dir / f"{i}{label_suffix}") for i in ids]
    for attr, what in (("image_path", "image"), ("label_path", "label file")):
        missing = [getattr(p, attr) for p in pairs if not getattr(p, attr).is_file()]
        if missing:
            raise LmsegError(f"{len(missing)} {what}(s) listed in {source} are missing: {_listing(missing)}")
    return pairs


def _index(folder: Path, suffixes: Iterable[str], recursive: bool, *, kind: str) -> dict[str, Path]:
    """Map sample id -> file for the files of ``folder`` that end with one of ``suffixes``."""
    lowered = [s.lower() for s in suffixes]
    found: dict[str, Path] = {}
    files = folder.rglob("*") if recursive else folder.iterdir()
    for path in files:
        name = path.name.lower()
        suffix = next((s for s in lowered if name.endswith(s)), None)
        if suffix is None or name.startswith(".") or not path.is_file():
            continue
        rel = path.relative_to(folder).as_posix()
        key = rel[: len(rel) - len(suffix)]
        if key in found:
            raise LmsegError(f"two {kind} files for sample {key!r}: {found[key]} and {path}")
        found[key] = path
    return found


def _listing(paths: Iterable[Path]) -> str:
    paths = list(paths)
    shown = ", ".join(str(p) for p in paths[:_MAX_LISTED])
    return shown + (f" (and {len(paths) - _MAX_LISTED} more)" if len(paths) > _MAX_LISTED else "")

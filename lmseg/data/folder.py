"""Your own labelled images: a folder of images, a folder of label PNGs and a class list.

::

    my_data/
        images/street_01.jpg  street_02.png ...   # any of .jpg .jpeg .png .bmp .tif .tiff .webp
        labels/street_01.png  street_02.png ...   # same stem; single-channel, value = class index
        classes.txt                               # one class per line, line 1 = class 0

Label values are class indices ``0 .. K-1`` (``K`` = number of classes in the list); the
values in ``ignore_values`` (255 by default) are not evaluated. With ``reduce_zero_label``,
stored 0 means "unlabelled" and ``1 .. K`` are the classes. Every image needs a label and every
label an image; a label value outside the class list is an error that names the file.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from lmseg.data.dataset import SegmentationDataset
from lmseg.data.label_map import LabelMap
from lmseg.data.pairing import IMAGE_SUFFIXES, pair_folders
from lmseg.errors import LmsegError
from lmseg.vocab import Vocabulary, load_vocabulary_file, parse_class_list

__all__ = ["folder_dataset"]


def folder_dataset(
    images_dir: str | Path,
    labels_dir: str | Path,
    classes: Vocabulary | str | Path | Sequence[str],
    *,
    ignore_values: Iterable[int] = (255,),
    reduce_zero_label: bool = False,
    label_suffix: str = ".png",
    image_suffixes: Sequence[str] = IMAGE_SUFFIXES,
    name: str | None = None,
) -> SegmentationDataset:
    """Open a user's labelled folder pair.

    Args:
        images_dir: the images.
        labels_dir: the label maps, named ``<image stem><label_suffix>``.
        classes: a :class:`~lmseg.vocab.Vocabulary`, a class-list file (one class per line),
            or a sequence of class names (``;`` between synonyms), in label order.
        ignore_values: stored values that are not evaluated. They decode to the ignore index
            (255, or 65535 above 255 classes); they must not be class indices.
        reduce_zero_label: stored 0 = unlabelled, ``1 .. K`` = classes ``0 .. K-1``.
        label_suffix: what follows the stem in a label file name.
        image_suffixes: image file endings to look for.
        name: dataset name for reports (default: the images folder's parent's name).
    """
    images_dir, labels_dir = Path(images_dir), Path(labels_dir)
    vocabulary = _as_vocabulary(classes)
    k = len(vocabulary)
    ignore_values = tuple(ignore_values)
    clashes = [v for v in ignore_values if 0 <= v < k]
    if clashes:
        raise LmsegError(f"ignore values {clashes} are class indices of the {k}-class list; choose values >= {k}")
    label_map = (
        LabelMap.reduce_zero_label(k, ignore_values=ignore_values)
        if reduce_zero_label
        else LabelMap.identity(k, ignore_values=ignore_values)
    )
    pairs = pair_folders(images_dir, labels_dir, label_suffix=label_suffix, image_suffixes=image_suffixes)
    return SegmentationDataset(
        name or images_dir.resolve().parent.name or "folder", pairs, vocabulary, label_map, layout="folder"
    )


def _as_vocabulary(classes: Vocabulary | str | Path | Sequence[str]) -> Vocabulary:
    if isinstance(classes, Vocabulary):
        return classes
    if isinstance(classes, (str, Path)):
        return load_vocabulary_file(classes)
    names = [str(c) for c in classes]
    with_comma = [n for n in names if "," in n]
    if with_comma:
        raise LmsegError(f"class names must not contain ',' (use ';' between synonyms): {with_comma}")
    return parse_class_list(",".join(names), name="folder-classes")

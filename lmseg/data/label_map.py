"""How the values stored in a label file become class indices.

A :class:`LabelMap` is a lookup table from every possible stored value to a class index
(``0 .. num_classes-1``), to the ignore index, or to "invalid". Decoding one label map is a
single table lookup, so it costs the same for an identity map, ``reduce_zero_label`` or an
id map. A stored value that the table marks invalid is an error that names the file and the
values: a wrong class list or a wrongly prepared dataset must never be scored silently.

Output convention (the same for every reader):
    * ``num_classes <= 255``: uint8 labels, ignore index 255.
    * ``num_classes > 255`` (ADE-847, PC-459): uint16 labels, ignore index 65535, because 255
      is a real class there (the SAN / CAT-Seg convention for A-847).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lmseg.errors import LmsegError

__all__ = ["LabelMap", "ignore_index_for"]

_INVALID = -1
_MAX_SHOWN = 10


def ignore_index_for(num_classes: int) -> int:
    """The ignore index of decoded labels: 255 up to 255 classes, else 65535."""
    return 255 if num_classes <= 255 else 65535


@dataclass(frozen=True, eq=False)
class LabelMap:
    """A lookup table from stored label values to class indices.

    Attributes:
        num_classes: ``K``; decoded values are ``0 .. K-1`` or :attr:`ignore_index`.
        table: int32 array indexed by stored value; entries are a class index, the ignore
            index, or -1 for values that must not occur. Stored values beyond the table's end
            are invalid too.
        description: one line for reports and error messages, e.g. ``"reduce_zero_label"``.
    """

    num_classes: int
    table: np.ndarray = field(repr=False)
    description: str

    @property
    def ignore_index(self) -> int:
        return ignore_index_for(self.num_classes)

    @property
    def dtype(self) -> type[np.unsignedinteger]:
        """uint8 up to 255 classes, uint16 above."""
        return np.uint8 if self.num_classes <= 255 else np.uint16

    # ----------------------------------------------------------------------- constructors
    @classmethod
    def identity(cls, num_classes: int, *, ignore_values: Iterable[int] = ()) -> LabelMap:
        """Stored values are already class indices; ``ignore_values`` (and the output ignore
        index itself) mean "not evaluated"."""
        return cls.from_mapping(
            num_classes,
            {i: i for i in range(num_classes)},
            ignore_values=ignore_values,
            description="class indices as stored",
        )

    @classmethod
    def reduce_zero_label(cls, num_classes: int, *, ignore_values: Iterable[int] = ()) -> LabelMap:
        """mmsegmentation's ``reduce_zero_label``: stored 0 (unlabelled/background) becomes
        ignore, stored ``1 .. K`` become ``0 .. K-1``; the output ignore index and
        ``ignore_values`` stay ignore."""
        return cls.from_mapping(
            num_classes,
            {i + 1: i for i in range(num_classes)},
            ignore_values=(0, *ignore_values),
            description="reduce_zero_label (stored 0 -> ignore, 1..K -> 0..K-1)",
        )

    @classmethod
    def from_mapping(
        cls,
        num_classes: int,
        mapping: Mapping[int, int],
        *,
        ignore_values: Iterable[int] = (),
        unmapped_is_ignore: bool = False,
        description: str = "id map",
    ) -> LabelMap:
        """A general table.

        Args:
            num_classes: ``K``.
            mapping: stored value -> class index in ``0 .. K-1``.
            ignore_values: stored values that mean "not evaluated". The output ignore index
                (255 or 65535) is always one of them.
            unmapped_is_ignore: if True, every other stored value is ignored too (as the
                official id-map conversions do); if False they are errors.
            description: one line for reports.
        """
        ignore = ignore_index_for(num_classes)
        ignore_values = {int(v) for v in ignore_values} | {ignore}
        size = 1 + max([*mapping.keys(), *ignore_values])
        if size > 65536:
            raise ValueError(f"stored label values above 65535 are not supported ({size - 1})")
        size = 256 if size <= 256 else 65536
        table = np.full(size, ignore if unmapped_is_ignore else _INVALID, dtype=np.int32)
        for value in ignore_values:
            table[value] = ignore
        for value, index in mapping.items():
            if not 0 <= index < num_classes:
                raise ValueError(f"mapping sends stored value {value} to {index}, outside 0..{num_classes - 1}")
            table[value] = index
        table.setflags(write=False)
        return cls(num_classes, table, description)

    # --------------------------------------------------------------------------- decoding
    def decode(self, stored: np.ndarray, source: str | Path = "label map") -> np.ndarray:
        """Turn stored values into class indices.

        Args:
            stored: ``(H, W)`` unsigned integer array as read from the file.
            source: the file, named in error messages.

        Returns:
            ``(H, W)`` array of :attr:`dtype` with values ``0 .. K-1`` or :attr:`ignore_index`.

        Raises:
            LmsegError: the array holds values that this dataset's labels cannot contain
                (the message lists them and the valid range).
        """
        stored = np.asarray(stored)
        if not np.issubdtype(stored.dtype, np.integer):
            raise LmsegError(f"{source}: label values must be integers, got dtype {stored.dtype}")
        top = int(stored.max()) if stored.size else 0
        low = int(stored.min()) if stored.size else 0
        if low < 0 or top >= self.table.size:
            bad = np.unique(stored[(stored < 0) | (stored >= self.table.size)])
            self._raise_invalid(bad, source)
        decoded = self.table[stored]
        if decoded.size and int(decoded.min()) == _INVALID:
            self._raise_invalid(np.unique(stored[decoded == _INVALID]), source)
        return decoded.astype(self.dtype)

    def _raise_invalid(self, values: np.ndarray, source: str | Path) -> None:
        shown = ", ".join(str(int(v)) for v in values[:_MAX_SHOWN])
        more = f" and {values.size - _MAX_SHOWN} more" if values.size > _MAX_SHOWN else ""
        raise LmsegError(
            f"{source}: label values outside the class range: {shown}{more}. This dataset has "
            f"{self.num_classes} classes (decoding: {self.description}); check that the class list has the "
            "right length and that the labels were prepared for this benchmark"
        )

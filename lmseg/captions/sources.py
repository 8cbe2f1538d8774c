"""Deterministic random access to image-caption pairs, for training with exact resume.

:class:`PairSource` answers "which pair is position ``p`` of epoch ``e``", a pure function of
``(seed, e, p)``, for a list of webdataset tar files or a caption table:

* tar files: the file order is a permutation drawn from ``(seed, e)``, and the samples of each
  file a permutation drawn from ``(seed, e, file)``; only the per-file sample counts (one
  number per file) are kept, and the index of the file in use is re-read on demand (a small
  cache of recent files), so memory does not grow with the dataset;
* a table (small sets): a permutation of its rows drawn from ``(seed, e)``.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from lmseg.captions.table import FileSample
from lmseg.captions.webdataset import SkipLog, scan_tar
from lmseg.errors import LmsegError

log = logging.getLogger(__name__)


class Pair(Protocol):
    """A pair: ``caption``, ``image_name`` (for messages), ``read_image_bytes()``."""

    caption: str

    @property
    def image_name(self) -> str: ...

    def read_image_bytes(self) -> bytes: ...


class PairSource(Protocol):
    """Random access to pairs by (epoch, position)."""

    def __len__(self) -> int: ...

    def pair(self, epoch: int, position: int) -> Pair: ...


class TarPairs:
    """Pairs of webdataset tar files (see the module docstring).

    Args:
        tars: the tar files.
        seed: the order's seed.
        skips: where the first scan counts skipped inputs.
        cached_tars: tar-file indices kept in memory.

    Raises:
        LmsegError: no tar file has a usable sample.
    """

    def __init__(self, tars: Sequence[Path], seed: int, skips: SkipLog, *, cached_tars: int = 2) -> None:
        self.tars = list(tars)
        self.seed = seed
        self.cached_tars = cached_tars
        self._cache: OrderedDict[int, list] = OrderedDict()
        self.counts = np.array([len(self._load(i, skips)) for i in range(len(self.tars))], dtype=np.int64)
        if self.counts.sum() == 0:
            raise LmsegError(f"no usable image-caption pair in {len(self.tars)} tar file(s) ({skips.summary()})")
        log.info("%d pairs in %d tar files (%s)", self.counts.sum(), len(self.tars), skips.summary())

    def __len__(self) -> int:
        return int(self.counts.sum())

    def _load(self, index: int, skips: SkipLog | None = None) -> list:
        if index not in self._cache:
            self._cache[index] = scan_tar(self.tars[index], skips or SkipLog(max_logged=0))
            while len(self._cache) > self.cached_tars:
                self._cache.popitem(last=False)
        self._cache.move_to_end(index)
        return self._cache[index]

    def pair(self, epoch: int, position: int) -> Pair:
        order = np.random.default_rng([self.seed, epoch]).permutation(len(self.tars))
        ends = np.cumsum(self.counts[order])
        slot = int(np.searchsorted(ends, position, side="right"))
        tar = int(order[slot])
        local = position - (int(ends[slot - 1]) if slot else 0)
        within = np.random.default_rng([self.seed, epoch, tar]).permutation(int(self.counts[tar]))
        return self._load(tar)[int(within[local])]


class TablePairs:
    """Pairs of a caption table, in a permutation drawn from ``(seed, epoch)``."""

    def __init__(self, samples: Sequence[FileSample], seed: int) -> None:
        if not samples:
            raise LmsegError("the caption table has no usable image-caption pair")
        self.samples = list(samples)
        self.seed = seed
        self._perm: tuple[int, np.ndarray] | None = None

    def __len__(self) -> int:
        return len(self.samples)

    def pair(self, epoch: int, position: int) -> Pair:
        if self._perm is None or self._perm[0] != epoch:
            self._perm = (epoch, np.random.default_rng([self.seed, epoch]).permutation(len(self.samples)))
        return self.samples[int(self._perm[1][position])]

"""Training samples of a segmentation split: random scale, crop and flip, indexed by a global counter.

Sample ``k`` is image ``perm_e[k % L]`` of epoch ``e = k // L`` (``perm_e`` a permutation of the
``L`` images drawn from ``(seed, e)``), augmented with a generator seeded by ``(seed, k)``: it
depends on nothing but ``(seed, k)``, so a resumed run reads the very same data
(:mod:`lmseg.engine.sampler` hands out the counters).
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["TrainSamples"]


class TrainSamples:
    """Map-style dataset over the global sample counter ``k`` (see the module docstring).

    Args:
        dataset: an opened split (:func:`lmseg.data.open_dataset`).
        crop: side of the square crops (the model's input size).
        base_short_side: images are resized so their short side is ``base_short_side * s``, ``s``
            uniform in ``scale_range``; then a random ``crop`` (padded with ``ignore_index``
            where the image is smaller) and a random horizontal flip.
        scale_range: see above.
        seed: of the order and the augmentation.
        ignore_index: the label value of padding.

    Items are ``(image, label)``: ``(3, crop, crop)`` float32 in [0, 1] and ``(crop, crop)`` int64.
    """

    def __init__(self, dataset: Any, *, crop: int, base_short_side: int, scale_range: tuple[float, float],
                 seed: int, ignore_index: int) -> None:
        self.dataset = dataset
        self.crop = crop
        self.base = base_short_side
        self.scale_range = scale_range
        self.seed = seed
        self.ignore = ignore_index
        self._perm: dict[int, np.ndarray] = {}

    def __len__(self) -> int:  # nominal; the sampler is infinite
        return 2**62

    def index_of(self, k: int) -> int:
        """The dataset index of sample counter ``k``."""
        n = len(self.dataset)
        epoch = k // n
        if epoch not in self._perm:
            self._perm = {epoch: np.random.default_rng([self.seed, 0, epoch]).permutation(n)}
        return int(self._perm[epoch][k % n])

    def __getitem__(self, k: int):
        import torch
        from PIL import Image

        sample = self.dataset[self.index_of(k)]
        rng = np.random.default_rng([self.seed, 1, k])
        image, label = sample.image, sample.label.astype(np.int64)
        h, w = label.shape
        short = self.base * rng.uniform(*self.scale_range)
        scale = short / min(h, w)
        nh, nw = max(1, int(round(h * scale))), max(1, int(round(w * scale)))
        image = np.asarray(Image.fromarray(image).resize((nw, nh), Image.BILINEAR))
        label = np.asarray(Image.fromarray(label.astype(np.int32)).resize((nw, nh), Image.NEAREST)).astype(np.int64)
        c = self.crop
        ph, pw = max(0, c - nh), max(0, c - nw)
        if ph or pw:
            image = np.pad(image, ((0, ph), (0, pw), (0, 0)))
            label = np.pad(label, ((0, ph), (0, pw)), constant_values=self.ignore)
        y0 = int(rng.integers(0, label.shape[0] - c + 1))
        x0 = int(rng.integers(0, label.shape[1] - c + 1))
        image, label = image[y0:y0 + c, x0:x0 + c], label[y0:y0 + c, x0:x0 + c]
        if rng.random() < 0.5:
            image, label = image[:, ::-1], label[:, ::-1]
        x = torch.from_numpy(np.array(image, copy=True)).permute(2, 0, 1).float() / 255.0
        return x, torch.from_numpy(np.array(label, copy=True))

"""MGCA's training samples: image-caption pairs with their noun phrases, indexed by a counter.

:class:`CaptionTrainSamples` is map-style and indexed by the global sample counter ``k`` (as
the shared trainer asks): sample ``k`` is position ``k mod L`` of epoch ``k div L`` of a
:class:`~lmseg.captions.sources.PairSource` of ``L`` pairs, cropped and resized with a
generator seeded by ``(seed, k)``. So the data of every step is a pure function of
``(seed, k)`` and resuming is exact. An image that cannot be decoded is counted, named in the
log, and replaced by the next position (still a function of ``k``).

Noun phrases come from a :class:`PhraseLookup`: the rule-based parser, or an LLM
caption-phrase table with the rules as fallback for captions it lacks or has no phrase for
(counted).
"""

from __future__ import annotations

import io
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image

from lmseg.captions.phrase_table import PhraseTable
from lmseg.captions.phrases import rule_phrases
from lmseg.captions.sources import PairSource
from lmseg.captions.webdataset import SkipLog
from lmseg.data.image_io import pil_to_rgb
from lmseg.errors import LmsegError

log = logging.getLogger(__name__)

_MAX_REPLACEMENTS = 100


class PhraseLookup:
    """Noun phrases of a caption: from an LLM table when it has phrases for the caption, else by
    rules (a table written before empty answers counted as failures may hold empty rows).

    Args:
        table: a loaded caption-phrase table, or None (rules only).
        max_phrases: most phrases per caption.
    """

    def __init__(self, table: PhraseTable | None, max_phrases: int) -> None:
        self.table = table
        self.max_phrases = max_phrases
        self.fallbacks = 0

    def __call__(self, caption: str) -> tuple[str, ...]:
        if self.table is not None:
            found = self.table.get(caption)
            if found:
                return found[: self.max_phrases]
            self.fallbacks += 1
            if self.fallbacks <= 20:
                log.warning("caption without phrases in the phrase table, parsed by rules instead: %.80r", caption)
        return rule_phrases(caption, max_phrases=self.max_phrases)


@dataclass(frozen=True)
class CropSettings:
    """Random resized crop: a square of ``scale`` x the image area (uniform in ``scale``),
    aspect ratio log-uniform in ``ratio``, resized to ``size`` (CLIP's training crop)."""

    size: int
    scale: tuple[float, float] = (0.5, 1.0)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)


def random_resized_crop(rgb: np.ndarray, crop: CropSettings, rng: np.random.Generator) -> np.ndarray:
    """``(size, size, 3)`` uint8 crop of an ``(H, W, 3)`` image (see :class:`CropSettings`)."""
    h, w = rgb.shape[:2]
    area = h * w * rng.uniform(*crop.scale)
    ratio = float(np.exp(rng.uniform(np.log(crop.ratio[0]), np.log(crop.ratio[1]))))
    ch = int(min(h, max(1, round(np.sqrt(area / ratio)))))
    cw = int(min(w, max(1, round(np.sqrt(area * ratio)))))
    y0, x0 = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
    patch = Image.fromarray(rgb[y0:y0 + ch, x0:x0 + cw])
    return np.asarray(patch.resize((crop.size, crop.size), Image.BILINEAR))


def decode_rgb(data: bytes) -> np.ndarray:
    """``(H, W, 3)`` uint8 RGB of encoded image bytes.

    Raises:
        ValueError: the bytes are not a decodable image.
    """
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            return pil_to_rgb(image)
    except (OSError, SyntaxError, Image.DecompressionBombError) as exc:
        raise ValueError(f"{type(exc).__name__}: {exc}") from None


class CaptionTrainSamples(torch.utils.data.Dataset):
    """Training samples (see the module docstring).

    Item ``k``: ``{"image": (3, S, S) float32 in [0, 1], "caption": str, "phrases": tuple}``.
    """

    def __init__(self, source: PairSource, phrases: PhraseLookup, crop: CropSettings, seed: int) -> None:
        self.source = source
        self.phrases = phrases
        self.crop = crop
        self.seed = seed
        self.skips = SkipLog()

    def __len__(self) -> int:  # nominal; the trainer's sampler is infinite
        return 2**62

    def __getitem__(self, k: int) -> dict[str, Any]:
        n = len(self.source)
        epoch, position = divmod(int(k), n)
        for step in range(_MAX_REPLACEMENTS):
            pair = self.source.pair(epoch, (position + step) % n)
            try:
                rgb = decode_rgb(pair.read_image_bytes())
            except (ValueError, OSError) as exc:
                self.skips.skip("bad_image", pair.image_name, str(exc)[:200])
                continue
            image = random_resized_crop(rgb, self.crop, np.random.default_rng([self.seed, 1, int(k)]))
            return {"image": torch.from_numpy(image.copy()).permute(2, 0, 1).float() / 255.0,
                    "caption": pair.caption, "phrases": self.phrases(pair.caption)}
        raise LmsegError(f"{_MAX_REPLACEMENTS} images in a row could not be decoded near sample {k}; "
                         f"is the data readable? ({self.skips.summary()})")


def collate(items: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """``{"images": (B, 3, S, S), "captions": [B str], "phrases": [B tuples]}``."""
    return {"images": torch.stack([i["image"] for i in items]),
            "captions": [i["caption"] for i in items],
            "phrases": [tuple(i["phrases"]) for i in items]}

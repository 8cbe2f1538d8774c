"""What the page shows from a segmentation: the class table, the legend and score heat maps.

Colours come from :func:`lmseg.inference.overlay.palette`, so the page's legend, the overlay
and the overlay file written by ``segment`` agree on every class's colour.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from lmseg.inference.overlay import palette

__all__ = ["ClassRow", "by_share", "class_rows", "heat_map", "legend_html", "shrink"]

# Anchors of a dark-blue -> teal -> yellow colour ramp for scores 0 .. 1 (perceptually ordered).
_RAMP = np.array([[13, 8, 135], [84, 2, 163], [139, 10, 165], [185, 50, 137], [219, 92, 104],
                  [244, 136, 73], [254, 188, 43], [240, 249, 33]], dtype=np.float32)


@dataclass(frozen=True)
class ClassRow:
    """One class of the result.

    Attributes:
        index: class index (pixel value in the label PNG).
        name: the class's primary name.
        share: fraction of the image's pixels labelled with this class, in [0, 1].
        mean_score: the class's mean score over those pixels, in [0, 1]; None when it has no
            pixels or no scores were computed.
        colour: ``#rrggbb`` of the class in the overlay.
    """

    index: int
    name: str
    share: float
    mean_score: float | None
    colour: str


def class_rows(label_map: np.ndarray, scores: np.ndarray | None, class_names: Sequence[str]) -> list[ClassRow]:
    """One row per class, in vocabulary order.

    Args:
        label_map: ``(H, W)`` int class indices into ``class_names``.
        scores: ``(N, H, W)`` float scores in [0, 1], or None.
        class_names: the N class names.
    """
    n = len(class_names)
    flat = np.asarray(label_map).ravel()
    counts = np.bincount(flat, minlength=n)
    sums = None
    if scores is not None:
        # The score of each pixel's own class, summed per class: the mean score where it was chosen.
        own = np.take_along_axis(scores.reshape(n, -1), flat[None].astype(np.int64), axis=0)[0]
        sums = np.bincount(flat, weights=own, minlength=n)
    colours = palette(n)
    return [
        ClassRow(
            index=i,
            name=name,
            share=float(counts[i]) / flat.size,
            mean_score=None if sums is None or counts[i] == 0 else float(sums[i] / counts[i]),
            colour="#%02x%02x%02x" % tuple(int(c) for c in colours[i]),
        )
        for i, name in enumerate(class_names)
    ]


def by_share(rows: Sequence[ClassRow]) -> list[ClassRow]:
    """The page's one order of classes: largest pixel share first, ties (classes with no
    pixels among them) in vocabulary order; the order of the overlay file's legend too."""
    return sorted(rows, key=lambda r: (-r.share, r.index))


def _format_share(share: float) -> str:
    """A pixel share as the legend shows it: ``37.5%``, or ``<0.1%`` for a class with a few pixels."""
    return "<0.1%" if 0 < share < 0.0005 else f"{100 * share:.1f}%"


def legend_html(rows: Sequence[ClassRow]) -> str:
    """The legend as HTML: a colour swatch, the name and the pixel share of each class present
    in the image, in :func:`by_share` order (classes with no pixels are left out)."""
    items = [
        f'<li class="lmseg-legend-item"><span class="lmseg-swatch" style="background:{row.colour}"></span>'
        f'<span class="lmseg-class-name">{html.escape(row.name)}</span>'
        f'<span class="lmseg-share">{html.escape(_format_share(row.share))}</span></li>'
        for row in by_share(rows) if row.share > 0
    ]
    return f'<ul class="lmseg-legend">{"".join(items)}</ul>'


def heat_map(scores: np.ndarray) -> np.ndarray:
    """Colour one class's scores: ``(H, W)`` uint8 (255 = score 1) or float in [0, 1] ->
    ``(H, W, 3)`` uint8 RGB on a dark-blue (0) to yellow (1) ramp."""
    values = scores.astype(np.float32) / 255.0 if scores.dtype == np.uint8 else np.clip(scores, 0.0, 1.0)
    position = values * (len(_RAMP) - 1)
    low = np.clip(np.floor(position).astype(np.int64), 0, len(_RAMP) - 2)
    fraction = (position - low)[..., None]
    return np.round(_RAMP[low] * (1 - fraction) + _RAMP[low + 1] * fraction).astype(np.uint8)


def shrink(image: np.ndarray, max_side: int) -> np.ndarray:
    """``image`` (``(H, W)`` or ``(H, W, C)`` uint8) resized so its long side is at most
    ``max_side`` (bilinear, aspect kept); returned unchanged when already small enough."""
    height, width = image.shape[:2]
    scale = max_side / max(height, width)
    if scale >= 1:
        return image
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return np.asarray(Image.fromarray(image).resize(size, Image.Resampling.BILINEAR))

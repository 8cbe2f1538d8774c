"""Colouring label maps: a fixed palette, colour overlays and a legend, drawn with Pillow.

Colours depend only on the class index (not on the image), so class ``i`` has the same
colour in every overlay of a vocabulary.
"""

from __future__ import annotations

import colorsys
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw

from lmseg.inference.text_drawing import fit_text, load_font

__all__ = ["colorize", "draw_overlay", "palette"]

_GOLDEN = 0.618033988749895
LEGEND_ROW = 18
LEGEND_WIDTH = 220
MAX_LEGEND_ROWS = 40


def palette(num_classes: int) -> np.ndarray:
    """``(num_classes, 3)`` uint8 RGB colours, distinct for neighbouring indices and stable.

    Hues step by the golden ratio; saturation and value cycle so that far-apart classes with
    close hues still differ.
    """
    colours = np.empty((num_classes, 3), dtype=np.uint8)
    for index in range(num_classes):
        hue = (index * _GOLDEN) % 1.0
        saturation = (0.85, 0.55, 0.95)[index % 3]
        value = (0.95, 0.75, 0.55)[(index // 3) % 3]
        colours[index] = [round(255 * c) for c in colorsys.hsv_to_rgb(hue, saturation, value)]
    return colours


def colorize(label_map: np.ndarray, num_classes: int) -> np.ndarray:
    """``(H, W, 3)`` uint8 colours of an ``(H, W)`` class-index map (indices ``0 .. num_classes-1``)."""
    return palette(num_classes)[np.asarray(label_map)]


def draw_overlay(
    image: np.ndarray,
    label_map: np.ndarray,
    class_names: Sequence[str],
    *,
    alpha: float = 0.5,
    legend: bool = True,
) -> Image.Image:
    """Blend the class colours over the image and add a legend of the classes present.

    Args:
        image: ``(H, W, 3)`` uint8 RGB.
        label_map: ``(H, W)`` class indices into ``class_names``.
        class_names: the vocabulary's names in class-index order.
        alpha: weight of the class colours (0 = image only, 1 = colours only).
        legend: add a panel on the right listing the classes present, largest area first,
            with their colour and share of the image (at most ``MAX_LEGEND_ROWS`` rows).

    Returns:
        An RGB image ``(W + legend width) x max(H, legend height)``.
    """
    image = np.asarray(image)
    label_map = np.asarray(label_map)
    if image.shape[:2] != label_map.shape:
        raise ValueError(f"image {image.shape[:2]} and label map {label_map.shape} differ in size")
    colours = colorize(label_map, len(class_names)).astype(np.float32)
    blended = np.round(image.astype(np.float32) * (1 - alpha) + colours * alpha).astype(np.uint8)
    picture = Image.fromarray(blended, "RGB")
    if not legend:
        return picture
    counts = np.bincount(label_map.ravel(), minlength=len(class_names))
    present = [int(i) for i in np.argsort(-counts, kind="stable") if counts[i] > 0]
    shown, hidden = present[:MAX_LEGEND_ROWS], len(present) - MAX_LEGEND_ROWS
    rows = len(shown) + (1 if hidden > 0 else 0)
    height = max(picture.height, 8 + LEGEND_ROW * rows + 8)
    canvas = Image.new("RGB", (picture.width + LEGEND_WIDTH, height), "white")
    canvas.paste(picture, (0, 0))
    draw = ImageDraw.Draw(canvas)
    font = load_font(12)
    colour_table = palette(len(class_names))
    total = float(label_map.size)
    x = picture.width + 8
    for row, index in enumerate(shown):
        y = 8 + row * LEGEND_ROW
        draw.rectangle((x, y + 2, x + 14, y + 16), fill=tuple(int(c) for c in colour_table[index]), outline="black")
        text = f"{class_names[index]} ({100 * counts[index] / total:.1f}%)"
        draw.text((x + 20, y + 9), fit_text(text, font, LEGEND_WIDTH - 32), fill="black", font=font, anchor="lm")
    if hidden > 0:
        y = 8 + len(shown) * LEGEND_ROW + 9
        draw.text((x, y), f"+ {hidden} more classes", fill="black", font=font, anchor="lm")
    return canvas



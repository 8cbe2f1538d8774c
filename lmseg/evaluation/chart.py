"""A per-class IoU bar chart drawn with Pillow (no matplotlib).

One horizontal bar per class with a defined IoU, best first, a dashed line at the mIoU, and
the class name and value beside each bar. Classes whose IoU is undefined (absent from both
ground truth and prediction) are left out and counted in the title.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from lmseg.evaluation.metric import format_percent
from lmseg.inference.text_drawing import fit_text, load_font

__all__ = ["draw_iou_chart", "save_iou_chart"]

ROW = 14
NAME_WIDTH = 200
BAR_WIDTH = 520
VALUE_WIDTH = 60
MARGIN = 12
BAR_COLOUR = (66, 133, 244)
MEAN_COLOUR = (219, 68, 55)



def draw_iou_chart(iou: Sequence[float], class_names: Sequence[str], *, title: str = "") -> Image.Image:
    """Draw the chart.

    Args:
        iou: per-class IoU in [0, 1], NaN where undefined.
        class_names: names in class-index order (same length as ``iou``).
        title: first line of the heading (the mIoU is appended).

    Returns:
        An RGB image ``2*MARGIN + NAME_WIDTH + BAR_WIDTH + VALUE_WIDTH`` (804) pixels wide,
        ``ROW`` pixels per shown class plus a heading and an axis.
    """
    values = np.asarray(iou, dtype=np.float64)
    if values.shape != (len(class_names),):
        raise ValueError(f"{values.shape[0]} IoU values for {len(class_names)} class names")
    shown = [i for i in np.argsort(-np.nan_to_num(values, nan=-1.0), kind="stable") if not math.isnan(values[i])]
    mean = float(values[shown].mean()) if shown else float("nan")
    font, heading_font = load_font(11), load_font(14)
    heading = 2 * 18 + MARGIN
    width = MARGIN * 2 + NAME_WIDTH + BAR_WIDTH + VALUE_WIDTH
    height = heading + ROW * max(len(shown), 1) + 2 * MARGIN + 14
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    left = MARGIN + NAME_WIDTH
    undefined = len(values) - len(shown)
    draw.text((MARGIN, MARGIN), (title + "  " if title else "") + f"mIoU {format_percent(mean, 1)}",
              fill="black", font=heading_font)
    draw.text(
        (MARGIN, MARGIN + 18),
        f"{len(shown)} classes with a defined IoU"
        + (f" ({undefined} absent from labels and prediction)" if undefined else ""),
        fill=(90, 90, 90),
        font=font,
    )
    top = heading
    for row, index in enumerate(shown):
        y = top + row * ROW
        name = str(class_names[index])
        draw.text((left - 6, y + ROW // 2), fit_text(name, font, NAME_WIDTH - 10), fill="black", font=font, anchor="rm")
        length = int(round(values[index] * BAR_WIDTH))
        if length > 0:
            draw.rectangle((left, y + 2, left + length, y + ROW - 2), fill=BAR_COLOUR)
        draw.text((left + length + 4, y + ROW // 2), format_percent(values[index], 1), fill="black", font=font, anchor="lm")
    bottom = top + ROW * max(len(shown), 1)
    draw.line((left, top, left, bottom), fill="black")
    for tick in range(0, 101, 20):
        x = left + tick * BAR_WIDTH // 100
        draw.line((x, bottom, x, bottom + 4), fill="black")
        draw.text((x, bottom + 5), f"{tick}%", fill="black", font=font, anchor="ma")
    if shown:
        x = left + int(round(mean * BAR_WIDTH))
        for y in range(top, bottom, 6):
            draw.line((x, y, x, min(y + 3, bottom)), fill=MEAN_COLOUR, width=2)
    return image


def save_iou_chart(path: str | Path, iou: Sequence[float], class_names: Sequence[str], *, title: str = "") -> Path:
    """Draw the chart and save it as PNG at ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    draw_iou_chart(iou, class_names, title=title).save(path, format="PNG")
    return path

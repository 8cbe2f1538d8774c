"""Text in images drawn with Pillow (legends, chart labels): a font and fitting text to a width."""

from __future__ import annotations

from PIL import ImageFont


def load_font(size: int) -> ImageFont.ImageFont:
    """Pillow's default font at ``size`` pixels; the fixed bitmap font where Pillow has no FreeType."""
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError, ImportError):
        return ImageFont.load_default()


def fit_text(text: str, font: ImageFont.ImageFont, width: int) -> str:
    """``text``, shortened with "..." until it is at most ``width`` pixels wide in ``font``."""
    if font.getlength(text) <= width:
        return text
    while text and font.getlength(text + "...") > width:
        text = text[:-1]
    return text + "..."

"""lmseg: open-vocabulary semantic segmentation (LMSeg, Trident, MROVSeg, MGCA)."""

__version__ = "0.1.0"

"""Segmentation models: ``lmseg`` (fusion + cost aggregation), ``trident`` (training-free)."""

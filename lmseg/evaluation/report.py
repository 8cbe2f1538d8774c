"""Evaluation reports: ``report.json``, ``report.md``, ``iou.png`` and ``confusion.npy``.

The JSON report is the machine-readable record::

    {
      "lmseg_version": "0.1.0",
      "complete": true, "num_samples": 2000, "num_selected": 2000,
      "scores": {"mean_iou": 0.31, "mean_accuracy": ..., "pixel_accuracy": ..., "fw_iou": ..., "num_pixels": ...},
      "per_class": [{"index": 0, "name": "wall", "iou": 0.62, "accuracy": 0.8,
                     "gt_pixels": 123, "predicted_pixels": 130}, ...],
      "settings": {...},     # everything that defines the result: model, weights, the segmenter's
                             # own settings (resize, window, background threshold, attribute
                             # table, ...), dataset, vocabulary, limit, shard
      "run": {...}           # how it was run: data root, throughput, workers (does not change scores)
    }

Scores are fractions in [0, 1]; undefined values (NaN) are ``null``. The Markdown report shows
them as percentages. The confusion matrix (``confusion[gt, pred]``, int64) is saved beside
the report as ``confusion.npy`` so that reports of other runs can be summed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from lmseg.evaluation.chart import save_iou_chart
from lmseg.evaluation.metric import SegmentationScores, format_percent
from lmseg.io.atomic import atomic_path, write_text

__all__ = ["build_report", "render_markdown", "write_report"]


def build_report(
    scores: SegmentationScores,
    class_names: Sequence[str],
    *,
    settings: Mapping[str, object],
    run: Mapping[str, object] | None = None,
    num_samples: int,
    num_selected: int,
) -> dict:
    """The JSON-ready report (layout in the module docstring)."""
    summary = scores.to_dict()
    confusion = scores.confusion
    gt_pixels, pred_pixels = confusion.sum(axis=1), confusion.sum(axis=0)
    per_class = [
        {
            "index": i,
            "name": str(name),
            "iou": summary["iou"][i],
            "accuracy": summary["accuracy"][i],
            "gt_pixels": int(gt_pixels[i]),
            "predicted_pixels": int(pred_pixels[i]),
        }
        for i, name in enumerate(class_names)
    ]
    return {
        "lmseg_version": settings.get("lmseg_version"),
        "complete": num_samples == num_selected,
        "num_samples": num_samples,
        "num_selected": num_selected,
        "scores": {k: summary[k] for k in ("mean_iou", "mean_accuracy", "pixel_accuracy", "fw_iou", "num_pixels")},
        "per_class": per_class,
        "settings": dict(settings),
        "run": dict(run or {}),
    }


def render_markdown(report: Mapping, *, chart_name: str | None = "iou.png") -> str:
    """The report as Markdown: summary, settings, per-class table, chart."""
    settings, scores = report["settings"], report["scores"]
    dataset = settings.get("dataset", {})
    title = f"{settings.get('model', 'segmenter')} on {dataset.get('name', '?')}"
    lines = [f"# Evaluation: {title}", ""]
    if not report["complete"]:
        lines += [
            f"**Incomplete: {report['num_samples']} of {report['num_selected']} samples counted.** "
            "Rerun the same command to finish (it resumes).",
            "",
        ]
    lines += [
        f"{report['num_samples']} sample(s), {scores['num_pixels']} counted pixels.",
        "",
        "| metric | value (%) |",
        "|---|---|",
        f"| mIoU | {_percent(scores['mean_iou'])} |",
        f"| mAcc | {_percent(scores['mean_accuracy'])} |",
        f"| pixel accuracy | {_percent(scores['pixel_accuracy'])} |",
        f"| fwIoU | {_percent(scores['fw_iou'])} |",
        "",
        "mIoU follows the mmsegmentation protocol: one confusion matrix over the whole split; classes absent "
        "from both labels and predictions are left out of the means; a class predicted but absent from the "
        "labels counts as 0.",
        "",
        "## Settings",
        "",
        "| setting | value |",
        "|---|---|",
    ]
    lines += [f"| {key} | {_cell(value)} |" for key, value in _flatten(settings) if key != "dataset.class_names"]
    run = report.get("run") or {}
    if run:
        lines += ["", "## Run", "", "| item | value |", "|---|---|"]
        lines += [f"| {key} | {_cell(value)} |" for key, value in _flatten(run)]
    if chart_name:
        lines += ["", "## Per-class IoU", "", f"![per-class IoU]({chart_name})"]
    lines += ["", "## Per class", "", "| # | class | IoU (%) | accuracy (%) | GT pixels | predicted pixels |"]
    lines += ["|---|---|---|---|---|---|"]
    for row in report["per_class"]:
        lines.append(
            f"| {row['index']} | {_cell(row['name'])} | {_percent(row['iou'])} | {_percent(row['accuracy'])} | "
            f"{row['gt_pixels']} | {row['predicted_pixels']} |"
        )
    return "\n".join(lines) + "\n"


def write_report(
    output_dir: str | Path,
    scores: SegmentationScores,
    class_names: Sequence[str],
    *,
    settings: Mapping[str, object],
    run: Mapping[str, object] | None = None,
    num_samples: int,
    num_selected: int,
) -> dict[str, Path]:
    """Write ``report.json``, ``report.md``, ``iou.png`` and ``confusion.npy`` (each atomically).

    Returns:
        ``{"json": ..., "markdown": ..., "chart": ..., "confusion": ...}`` paths.
    """
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    report = build_report(
        scores, class_names, settings=settings, run=run, num_samples=num_samples, num_selected=num_selected
    )
    paths = {
        "json": output_dir / "report.json",
        "markdown": output_dir / "report.md",
        "chart": output_dir / "iou.png",
        "confusion": output_dir / "confusion.npy",
    }
    write_text(paths["json"], json.dumps(report, indent=2, allow_nan=False) + "\n")
    write_text(paths["markdown"], render_markdown(report, chart_name=paths["chart"].name))
    dataset = settings.get("dataset", {})
    title = f"{settings.get('model', 'segmenter')} / {dataset.get('name', '') if isinstance(dataset, Mapping) else ''}"
    with atomic_path(paths["chart"]) as tmp:
        save_iou_chart(tmp, scores.iou, class_names, title=title)
    with atomic_path(paths["confusion"]) as tmp:
        np.save(tmp, scores.confusion)
    return paths


def _flatten(mapping: Mapping, prefix: str = "") -> list[tuple[str, object]]:
    items = []
    for key, value in mapping.items():
        if isinstance(value, Mapping) and value:
            items += _flatten(value, f"{prefix}{key}.")
        else:
            items.append((f"{prefix}{key}", value))
    return items


def _percent(value: float | None) -> str:
    return format_percent(value, suffix="")


def _cell(value: object) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return text.replace("|", "\\|").replace("\n", " ")

"""``segment`` and ``evaluate`` end to end with mrovseg_tiny (random weights, real images), and
the command-line errors: one ``error:`` line, exit status 2, no traceback."""

from __future__ import annotations

import json
import shutil

import numpy as np
import torch
from PIL import Image

from pipelines.evaluate import main as evaluate_main
from pipelines.segment import main as segment_main
from tests.data.samples import ADE150, build_ade150, images


def _cli(main, *args) -> int:
    return main([str(a) for a in args])


def test_segment_and_evaluate_end_to_end(tmp_path, capsys) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    for image in images(ADE150)[:2]:
        shutil.copy(image, photos / image.name)
    (photos / "broken.jpg").write_bytes(images(ADE150)[2].read_bytes()[:300])
    out = tmp_path / "out"
    code = _cli(segment_main, photos, "--model", "mrovseg_tiny", "--classes", "wall,floor,sky;heaven", "--output", out,
                "--scores", "--set", "inference.short_side=64")
    captured = capsys.readouterr()
    assert code == 1 and "broken.jpg" in captured.err and "Traceback" not in captured.err  # one bad image
    for image in images(ADE150)[:2]:
        with Image.open(image) as im:
            size = im.size
        with Image.open(out / f"{image.stem}_label.png") as label:
            assert label.size == size and np.asarray(label).max() <= 2
        assert len(list((out / f"{image.stem}_scores").iterdir())) == 3

    root = tmp_path / "data"
    build_ade150(root)
    report_dir = tmp_path / "eval"
    code = _cli(evaluate_main, "--model", "mrovseg_tiny", "--dataset", "ade150", "--data-root", root, "--limit", 2,
                "--output", report_dir, "--workers", 0, "--set", "inference.short_side=64")
    assert code == 0
    report = json.loads((report_dir / "report.json").read_text())
    assert report["complete"] and report["num_samples"] == 2 and report["settings"]["model"] == "mrovseg_tiny"
    assert report["settings"]["segmenter"]["inference"]["short_side"] == 64
    assert 0.0 <= report["scores"]["mean_iou"] <= 1.0
    assert np.load(report_dir / "confusion.npy").sum() == report["scores"]["num_pixels"] > 0


def test_command_line_errors(tmp_path, capsys) -> None:
    image = images(ADE150)[0]
    cases = [
        (["--classes", "cat,cat"], "cat"),
        (["--classes", "cat", "--set", "inference.clip_ensemble=2"], "clip_ensemble"),
        (["--classes", "cat", "--set", "inference.shortside=3"], "unknown field"),
    ]
    for extra, message in cases:
        code = _cli(segment_main, image, "--model", "mrovseg_tiny", "--output", tmp_path / "o", *extra)
        err = capsys.readouterr().err
        assert code == 2 and err.startswith("error: ") and message in err and "Traceback" not in err, (extra, err)
    lm = tmp_path / "lmseg.pt"
    torch.save({"format": "lmseg", "format_version": 1, "config": {"name": "lmseg_tiny"}}, lm)
    code = _cli(segment_main, image, "--model", "mrovseg_tiny", "--classes", "cat", "--checkpoint", lm,
                "--output", tmp_path / "o")
    err = capsys.readouterr().err
    assert code == 2 and "not a checkpoint of MROVSeg" in err and "lmseg_tiny" in err and "Traceback" not in err

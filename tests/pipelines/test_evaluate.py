"""``python -m pipelines.evaluate`` and lmseg.evaluation.runner on the real ADE-150 samples."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="evaluation decodes in torch DataLoader workers; run with the vision "
                            "environment")

from PIL import Image  # noqa: E402

from lmseg.data import open_dataset  # noqa: E402
from lmseg.errors import LmsegError  # noqa: E402
from lmseg.evaluation.chart import BAR_COLOUR, BAR_WIDTH, ROW  # noqa: E402
from lmseg.evaluation.runner import evaluate_dataset  # noqa: E402
from lmseg.evaluation.state import EvaluationState  # noqa: E402
from pipelines.evaluate import main  # noqa: E402
from tests.data.samples import ADE150, CAMVID, images, label_of, reduce_zero_label, stored  # noqa: E402
from tests.pipelines.fake_models import PixelSegmenter  # noqa: E402
from tests.tolerances import U64, fp32_tolerance  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
K = 150
HEADING = 2 * 18 + 12  # chart heading height


def expected_confusion(limit: int | None = None) -> np.ndarray:
    """The pixel model's confusion matrix on the ADE samples, computed without lmseg."""
    confusion = np.zeros((K, K), np.int64)
    for image_path in images(ADE150)[:limit]:
        rgb = np.asarray(Image.open(image_path).convert("RGB")).astype(np.int64)
        prediction = (rgb[:, :, 0] // 16 + rgb[:, :, 1] // 64) % K
        label = reduce_zero_label(stored(label_of(image_path))).astype(np.int64)
        keep = label != 255
        np.add.at(confusion, (label[keep], prediction[keep]), 1)
    return confusion


def evaluate_cli(*args) -> int:
    return main([str(a) for a in args])


def read_report(folder: Path) -> dict:
    return json.loads((folder / "report.json").read_text())


# ----------------------------------------------------------------------------- reports


def test_oracle_model_scores_one_everywhere(ade_root, tmp_path):
    out = tmp_path / "out"
    code = evaluate_cli(
        "--model", "fake_oracle", "--set", "dataset=ade150", "--set", f"root={ade_root}",
        "--dataset", "ade150", "--data-root", ade_root, "--output", out,
    )
    assert code == 0
    report = read_report(out)
    assert report["complete"] and report["num_samples"] == 3
    exact_one = fp32_tolerance(terms=150, depth=2, u=U64)["atol"]  # float64 sums over the 150 classes
    for key in ("mean_iou", "mean_accuracy", "pixel_accuracy", "fw_iou"):
        assert report["scores"][key] == pytest.approx(1.0, abs=exact_one)
    present = [row for row in report["per_class"] if row["gt_pixels"] > 0]
    assert present and all(row["iou"] == 1.0 and row["accuracy"] == 1.0 for row in present)
    assert all(row["iou"] is None for row in report["per_class"] if row["gt_pixels"] == 0)


def test_report_matches_an_independent_computation(ade_root, tmp_path):
    out = tmp_path / "out"
    assert evaluate_cli("--model", "fake_pixel", "--dataset", "ade150", "--data-root", ade_root, "--output", out) == 0
    expected = expected_confusion()
    np.testing.assert_array_equal(np.load(out / "confusion.npy"), expected)

    tp = np.diag(expected).astype(float)
    union = expected.sum(0) + expected.sum(1) - tp
    iou = np.where(union > 0, tp / np.maximum(union, 1), np.nan)
    gt = expected.sum(1)
    report = read_report(out)
    assert report["scores"]["mean_iou"] == pytest.approx(np.nanmean(iou))
    assert report["scores"]["pixel_accuracy"] == pytest.approx(tp.sum() / expected.sum())
    assert report["scores"]["mean_accuracy"] == pytest.approx(np.mean(tp[gt > 0] / gt[gt > 0]))
    assert report["scores"]["fw_iou"] == pytest.approx(np.sum(gt[gt > 0] / gt.sum() * iou[gt > 0]))
    assert report["scores"]["num_pixels"] == int(expected.sum())
    row = report["per_class"][0]
    assert row["name"] == "wall" and row["gt_pixels"] == int(gt[0])

    settings = report["settings"]
    assert settings["model"] == "fake_pixel"
    assert settings["segmenter"] == {
        "resize": 336, "window": [336, 224], "background_threshold": 0.0, "attributes": None
    }
    assert settings["dataset"]["name"] == "ade150" and settings["dataset"]["num_classes"] == K
    assert settings["dataset"]["vocabulary"]["name"] == "ade150"
    assert settings["dataset"]["class_names"][:3] == ["wall", "building", "sky"]
    assert settings["split"] == "validation" and settings["lmseg_version"]
    assert report["run"]["images_per_second"] > 0

    markdown = (out / "report.md").read_text()
    assert f"| mIoU | {100 * np.nanmean(iou):.2f} |" in markdown
    assert "| segmenter.background_threshold | 0.0 |" in markdown
    assert "![per-class IoU](iou.png)" in markdown
    assert "| 0 | wall |" in markdown
    with Image.open(out / "iou.png") as chart:
        assert chart.format == "PNG" and chart.width == 804
        pixels = np.asarray(chart.convert("RGB"))
    defined = int(np.sum(~np.isnan(iou)))
    assert pixels.shape[0] >= ROW * defined  # one row per class with a defined IoU
    best_row = pixels[HEADING + ROW // 2]  # the first bar is the best class
    bar_length = int(np.all(best_row == BAR_COLOUR, axis=1).sum())
    assert abs(bar_length - np.nanmax(iou) * BAR_WIDTH) <= 4  # axis and mIoU lines cover a few pixels


def test_limit_takes_the_first_samples(ade_root, tmp_path):
    out = tmp_path / "out"
    assert evaluate_cli(
        "--model", "fake_pixel", "--dataset", "ade150", "--data-root", ade_root, "--limit", 2, "--output", out
    ) == 0
    report = read_report(out)
    assert report["num_samples"] == 2 and report["settings"]["limit"] == 2
    np.testing.assert_array_equal(np.load(out / "confusion.npy"), expected_confusion(limit=2))


# ----------------------------------------------------------------------------- resume


def test_resume_after_a_crash_gives_the_uninterrupted_matrix(ade_root, tmp_path):
    dataset = open_dataset("ade150", ade_root)
    state = tmp_path / "state.npz"
    with pytest.raises(RuntimeError, match="injected crash"):
        evaluate_dataset(PixelSegmenter(crash_after=2), dataset, state_path=state, save_every=100, num_workers=1)
    saved = EvaluationState.load(state)  # saved on the way out although save_every was not reached
    assert len(saved.done) == 2 and not saved.complete

    seen = []
    result = evaluate_dataset(PixelSegmenter(), dataset, state_path=state, num_workers=1, on_sample=seen.append)
    assert seen == ["ADE_val_00000003"]  # only the sample that was not counted
    assert result.complete and result.num_samples == 3 and result.processed == 1
    np.testing.assert_array_equal(result.scores.confusion, expected_confusion())
    assert EvaluationState.load(state).complete


def test_resume_after_kill_9(ade_root, tmp_path):
    """The process dies without any cleanup (os._exit) on its 3rd image; the periodic saves survive."""
    out = tmp_path / "out"
    script = (
        "import sys, lmseg.registry as r; r.EXTRA_PACKAGES += ('tests.pipelines.fake_models',); "
        "from pipelines.evaluate import main; sys.exit(main(sys.argv[1:]))"
    )
    args = [sys.executable, "-c", script, "--model", "fake_pixel", "--dataset", "ade150",
            "--data-root", str(ade_root), "--output", str(out), "--save-every", "1", "--workers", "1"]
    env = {**os.environ, "FAKE_CRASH_AFTER": "2", "FAKE_CRASH_MODE": "exit"}
    killed = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert killed.returncode == 137, killed.stderr
    assert not (out / "report.json").exists()
    assert len(EvaluationState.load(out / "state.npz").done) == 2

    assert evaluate_cli(*args[3:]) == 0  # same command, healthy model: resumes
    np.testing.assert_array_equal(np.load(out / "confusion.npy"), expected_confusion())
    assert read_report(out)["run"]["processed_this_run"] == 1


def test_ctrl_c_saves_progress_and_exits_130(ade_root, tmp_path, monkeypatch, capsys):
    out = tmp_path / "out"
    base = ["--model", "fake_pixel", "--dataset", "ade150", "--data-root", ade_root, "--output", out]
    monkeypatch.setenv("FAKE_CRASH_AFTER", "1")
    monkeypatch.setenv("FAKE_CRASH_MODE", "interrupt")
    assert evaluate_cli(*base) == 130
    assert "run the same command again to resume" in capsys.readouterr().err
    assert EvaluationState.load(out / "state.npz").done == {"ADE_val_00000001"}
    monkeypatch.delenv("FAKE_CRASH_AFTER")
    assert evaluate_cli(*base) == 0
    np.testing.assert_array_equal(np.load(out / "confusion.npy"), expected_confusion())
    assert evaluate_cli(*base) == 0  # finished: a rerun only rewrites the report
    assert "nothing new to process" in capsys.readouterr().out
    assert read_report(out)["num_samples"] == 3


def test_changed_setting_refuses_the_old_state(ade_root, tmp_path, capsys):
    out = tmp_path / "out"
    base = ["--model", "fake_pixel", "--dataset", "ade150", "--data-root", ade_root, "--output", out]
    assert evaluate_cli(*base, "--limit", 2) == 0
    assert evaluate_cli(*base, "--limit", 2, "--set", "threshold=0.3") == 2
    err = capsys.readouterr().err
    assert "made with other settings" in err and "model_options.threshold" in err
    assert "segmenter.background_threshold: 0.0 -> 0.3" in err and "--restart" in err
    assert evaluate_cli(*base, "--limit", 2, "--set", "threshold=0.3", "--restart") == 0
    assert read_report(out)["settings"]["segmenter"]["background_threshold"] == 0.3


def test_weights_are_identified_by_content(ade_root, tmp_path, capsys):
    table = tmp_path / "attributes.parquet"
    table.write_bytes(b"version 1")
    out = tmp_path / "out"
    base = ["--model", "fake_pixel", "--set", f"attributes={table}", "--dataset", "ade150", "--data-root", ade_root,
            "--output", out, "--limit", 1]
    assert evaluate_cli(*base) == 0
    settings = read_report(out)["settings"]
    assert settings["weights"]["attributes"] == {"path": str(table), "sha256": hashlib.sha256(b"version 1").hexdigest()}
    assert settings["segmenter"]["attributes"] == str(table)
    table.write_bytes(b"version 2")  # same path, other content: the old progress must not be reused
    assert evaluate_cli(*base) == 2
    assert "weights.attributes.sha256" in capsys.readouterr().err


def test_corrupt_state_is_a_clear_error(ade_root, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "state.npz").write_bytes(b"not a zip file")
    assert evaluate_cli("--model", "fake_pixel", "--dataset", "ade150", "--data-root", ade_root, "--output", out) == 2
    assert "corrupt" in capsys.readouterr().err


# ----------------------------------------------------------------------------- shards


def test_shards_merge_to_the_full_result(ade_root, tmp_path, capsys):
    out = tmp_path / "shards"
    base = ["--model", "fake_pixel", "--dataset", "ade150", "--data-root", ade_root, "--output", out]
    assert evaluate_cli(*base, "--shard-index", 0, "--num-shards", 2) == 0
    assert evaluate_cli("--merge", "--num-shards", 2, "--output", out) == 2
    assert "missing" in capsys.readouterr().err and not (out / "report.json").exists()

    assert evaluate_cli(*base, "--shard-index", 1, "--num-shards", 2) == 0
    parts = [EvaluationState.load(out / f"shard-00{i}-of-002.state.npz") for i in range(2)]
    assert sorted(len(p.done) for p in parts) == [1, 2] and not parts[0].done & parts[1].done
    assert evaluate_cli("--merge", "--num-shards", 2, "--output", out) == 0
    np.testing.assert_array_equal(np.load(out / "confusion.npy"), expected_confusion())
    report = read_report(out)
    assert report["num_samples"] == 3 and report["settings"]["shard"] is None

    full = tmp_path / "full"
    assert evaluate_cli("--model", "fake_pixel", "--dataset", "ade150", "--data-root", ade_root, "--output", full) == 0
    assert read_report(full)["scores"] == report["scores"]


def test_merge_refuses_shards_of_other_settings(ade_root, tmp_path, capsys):
    out = tmp_path / "shards"
    base = ["--model", "fake_pixel", "--dataset", "ade150", "--data-root", ade_root, "--output", out]
    assert evaluate_cli(*base, "--shard-index", 0, "--num-shards", 2) == 0
    assert evaluate_cli(*base, "--shard-index", 1, "--num-shards", 2, "--set", "threshold=0.5") == 0
    assert evaluate_cli("--merge", "--num-shards", 2, "--output", out) == 2
    assert "other settings" in capsys.readouterr().err


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "args, message",
    [
        (["--model", "fake_pixel", "--dataset", "ade150", "--data-root", "{tmp}/nowhere"], "does not exist"),
        (["--model", "fake_pixel", "--dataset", "ade150", "--data-root", "{tmp}"], "no prepared label folder"),
        (["--model", "no_such_model", "--dataset", "ade150", "--data-root", "{data}"],
         "unknown segmenter 'no_such_model'"),
        (["--model", "fake_pixel", "--set", "colour=red", "--dataset", "ade150", "--data-root", "{data}"],
         "does not accept these options"),
        (["--model", "fake_pixel", "--set", "oops", "--dataset", "ade150", "--data-root", "{data}"], "KEY=VALUE"),
        (["--model", "fake_pixel", "--dataset", "ade150", "--data-root", "{data}", "--limit", "0"], "--limit"),
        (["--model", "fake_pixel", "--dataset", "ade150", "--data-root", "{data}", "--shard-index", "2",
          "--num-shards", "2"], "--shard-index"),
        (["--model", "fake_pixel", "--checkpoint", "{tmp}/none.pt", "--dataset", "ade150", "--data-root", "{data}"],
         "--checkpoint"),
        (["--dataset", "ade150", "--data-root", "{data}"], "--model is required"),
    ],
)
def test_bad_input_exits_2_with_a_message(args, message, ade_root, tmp_path, capsys):
    args = [a.format(tmp=tmp_path, data=ade_root) for a in args]
    assert evaluate_cli(*args, "--output", tmp_path / "out") == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and "Traceback" not in err


@pytest.mark.parametrize(("device", "message"), [
    ("bogus", "error: --device 'bogus' is not a device name"),
    pytest.param("cuda", "error: --device cuda: this machine has no such device (",
                 marks=pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA device")),
])
def test_a_device_this_machine_lacks_is_one_line_before_any_model_loads(device, message, ade_root, tmp_path, capsys,
                                                                         monkeypatch):
    import lmseg.registry

    monkeypatch.setattr(lmseg.registry, "create_segmenter", lambda *a, **k: pytest.fail("a model was loaded"))
    args = ["--model", "fake_pixel", "--dataset", "ade150", "--data-root", ade_root, "--device", device]
    assert evaluate_cli(*args, "--output", tmp_path / "out") == 2
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("flag", "value", "message"), [
    ("--workers", -1, "error: --workers must be at least 0, got -1"),
    ("--save-every", 0, "error: --save-every must be at least 1, got 0"),
    ("--limit", -3, "error: --limit must be at least 1, got -3"),
])
def test_bad_numbers_are_one_line_before_any_model_loads_and_leave_nothing(flag, value, message, ade_root, tmp_path,
                                                                            capsys, monkeypatch):
    import lmseg.registry

    monkeypatch.setattr(lmseg.registry, "create_segmenter", lambda *a, **k: pytest.fail("a model was loaded"))
    args = ["--model", "trident_tiny", "--dataset", "ade150", "--data-root", ade_root, flag, value]
    assert evaluate_cli(*args, "--output", tmp_path / "out") == 2
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1, err
    assert not (tmp_path / "out").exists()  # no state.npz, no report


def test_unknown_dataset_is_refused_by_the_parser(ade_root, capsys):
    with pytest.raises(SystemExit) as exit_info:
        evaluate_cli("--model", "fake_pixel", "--dataset", "ade9999", "--data-root", ade_root)
    assert exit_info.value.code == 2 and "invalid choice: 'ade9999'" in capsys.readouterr().err


def test_unreadable_image_names_the_file_and_keeps_progress(ade_root, tmp_path, capsys):
    broken = ade_root / "ADEChallengeData2016/images/validation/ADE_val_00000002.jpg"
    broken.write_bytes(broken.read_bytes()[:500])  # truncated JPEG
    out = tmp_path / "out"
    base = ["--model", "fake_pixel", "--dataset", "ade150", "--data-root", ade_root, "--output", out, "--save-every", 1]
    assert evaluate_cli(*base) == 1
    err = capsys.readouterr().err
    assert "ADE_val_00000002" in err and str(broken) in err and "Traceback" not in err
    assert EvaluationState.load(out / "state.npz").done == {"ADE_val_00000001"}


@pytest.mark.parametrize(
    "model, message",
    [("fake_wrong_size", "at the image's resolution"), ("fake_out_of_range", "prediction has values outside 0..149")],
)
def test_unusable_predictions_are_refused(model, message, ade_root, tmp_path, capsys):
    code = evaluate_cli("--model", model, "--dataset", "ade150", "--data-root", ade_root, "--output", tmp_path / "out")
    err = capsys.readouterr().err
    assert code == 1 and message in err and "ADE_val_00000001" in err and "Traceback" not in err


def test_runner_refuses_a_bad_shard(ade_root):
    with pytest.raises(LmsegError, match="--shard-index must be in 0..1 for --num-shards 2"):
        evaluate_dataset(PixelSegmenter(), open_dataset("ade150", ade_root), shard=(3, 2))


# ----------------------------------------------------------------------------- a real tiny model


def test_real_tiny_model_end_to_end(tiny_model, ade_root, tmp_path):
    out = tmp_path / "out"
    code = evaluate_cli("--model", tiny_model, "--dataset", "ade150", "--data-root", ade_root, "--limit", 2,
                        "--output", out, "--workers", 1)
    assert code == 0
    report = read_report(out)
    assert report["complete"] and report["num_samples"] == 2 and report["settings"]["model"] == tiny_model
    assert 0.0 <= report["scores"]["mean_iou"] <= 1.0
    assert np.load(out / "confusion.npy").sum() == report["scores"]["num_pixels"] > 0
    assert (out / "iou.png").stat().st_size > 0 and "| mIoU |" in (out / "report.md").read_text()


@pytest.mark.parametrize(
    "model, options, section, expected",
    [
        ("trident_tiny", ["config.stride=48", "config.refinement.enabled=true", "config.refinement.minimal_area=4"],
         (), {"stride": 48, "window": 64, "refinement": {"enabled": True, "minimal_area": 4}}),
        ("lmseg_tiny", ["inference.short_side=64", 'inference={"global_view": false}'],
         ("inference",), {"short_side": 64, "global_view": False, "overlap": pytest.approx(1 / 3)}),
    ],
)
def test_settings_fields_are_set_with_dotted_options(model, options, section, expected, ade_root, tmp_path):
    """--set section.field=value reaches the model's settings dataclass, and the report records it."""
    out = tmp_path / "out"
    opts = [arg for option in options for arg in ("--set", option)]
    code = evaluate_cli("--model", model, *opts, "--dataset", "ade150", "--data-root", ade_root, "--limit", 1,
                        "--output", out, "--workers", 0)
    assert code == 0
    settings = read_report(out)["settings"]["segmenter"]
    for key in section:
        settings = settings[key]
    assert_subset(expected, settings)


def assert_subset(expected: dict, actual: dict) -> None:
    for key, value in expected.items():
        if isinstance(value, dict):
            assert_subset(value, actual[key])
        else:
            assert actual[key] == value, key


@pytest.mark.parametrize(
    "model, option, message",
    [
        ("trident_tiny", "config.strid=48", "Trident config: unknown field(s) strid; known: short_side"),
        ("trident_tiny", "config.refinement.on=true", "Trident config.refinement: unknown field(s) on"),
        ("trident_tiny", "config.prob_thd=7", "Trident config: invalid TridentConfig: prob_thd must lie in [0, 1]"),
        ("lmseg_tiny", "inference.overlap=1.5", "LMSeg inference config: overlap must be in [0, 1)"),
        ("trident_tiny", "config.beta=nan", "Trident config: beta must be a finite number, got nan"),
        ("mgca_tiny", "inference.temperature=-inf", "MGCA inference config: temperature must be a finite number"),
        ("lmseg_tiny", "inference=3", "LMSeg inference config: expected a mapping"),
    ],
)
def test_bad_settings_fields_exit_2_naming_the_field(model, option, message, ade_root, tmp_path, capsys):
    code = evaluate_cli("--model", model, "--set", option, "--dataset", "ade150", "--data-root", ade_root,
                        "--limit", 1, "--output", tmp_path / "out")
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err


def test_dotted_options_nest_and_later_ones_win():
    from pipelines.evaluate import build_parser
    from pipelines.model_options import parse_options

    args = build_parser().parse_args([
        "--model", "m", "--dataset", "ade150", "--data-root", ".",
        "--set", 'config={"stride": 1, "window": 2}', "--set", "config.stride=3", "--set", "config.a.b=x",
        "--set", "seed=4",
    ])
    assert parse_options(args) == {"config": {"stride": 3, "window": 2, "a": {"b": "x"}}, "seed": 4}
    args = build_parser().parse_args(["--model", "m", "--dataset", "ade150", "--data-root", ".",
                                      "--set", "seed=4", "--set", "seed.x=1"])
    with pytest.raises(LmsegError, match="seed was already given a plain value"):
        parse_options(args)


# ----------------------------------------------------------------------------- streaming


def _rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    pytest.skip("no /proc/self/status on this system")


def test_memory_stays_flat_over_a_long_split(tmp_path):
    """200 CamVid-sized samples: the main process must not grow with the number of samples.

    Keeping one prediction per sample would add about 0.7 MiB each (140 MiB here)."""
    from lmseg.data import folder_dataset

    source = images(CAMVID)[0]
    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    for n in range(200):
        (tmp_path / "images" / f"s{n:03d}.png").symlink_to(source)
        (tmp_path / "labels" / f"s{n:03d}.png").symlink_to(label_of(source))
    dataset = folder_dataset(tmp_path / "images", tmp_path / "labels", [f"c{i}" for i in range(11)],
                             ignore_values=(11, 255))
    rss = {}

    def record(sample_id: str) -> None:
        position = int(sample_id[1:])
        if position in (40, 199):
            rss[position] = _rss_mib()

    result = evaluate_dataset(PixelSegmenter(), dataset, num_workers=2, on_sample=record)
    assert result.num_samples == 200
    assert rss[199] - rss[40] < 40, rss


def test_a_users_own_folder(tmp_path):
    """``--dataset folder`` with the CamVid samples as a user's data (11 = void, as SegNet stores it)."""
    root = tmp_path / "my_data"
    for image in images(CAMVID):
        (root / "images").mkdir(parents=True, exist_ok=True)
        (root / "labels").mkdir(parents=True, exist_ok=True)
        (root / "images" / image.name).write_bytes(image.read_bytes())
        (root / "labels" / image.name).write_bytes(label_of(image).read_bytes())
    names = ["sky", "building", "pole", "road", "pavement", "tree", "sign", "fence", "car", "pedestrian", "bicyclist"]
    (root / "classes.txt").write_text("\n".join(names) + "\n")
    out = tmp_path / "out"
    assert evaluate_cli("--model", "fake_pixel", "--dataset", "folder", "--data-root", root,
                        "--ignore-values", "11,255", "--output", out) == 0
    expected = np.zeros((11, 11), np.int64)
    for image in images(CAMVID):
        rgb = np.asarray(Image.open(image).convert("RGB")).astype(np.int64)
        prediction = (rgb[:, :, 0] // 16 + rgb[:, :, 1] // 64) % 11
        label = stored(label_of(image)).astype(np.int64)
        keep = (label != 11) & (label != 255)
        np.add.at(expected, (label[keep], prediction[keep]), 1)
    np.testing.assert_array_equal(np.load(out / "confusion.npy"), expected)
    report = read_report(out)
    assert report["settings"]["dataset"]["name"] == "my_data" and report["per_class"][6]["name"] == "sign"
    assert evaluate_cli("--model", "fake_pixel", "--dataset", "folder", "--data-root", tmp_path, "--output", out) == 2

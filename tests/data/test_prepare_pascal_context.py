"""pipelines.prepare_data for Pascal Context: the official trainval/*.mat -> pc59 / pc459 labels.

The raw tree is built in tmp_path in the release's format: JPEG images, one MATLAB v5 .mat per
image with a uint16 ``LabelMap`` (0 = unlabelled, 1..459), and ``labels.txt`` lines
``<id>: <name>``. Expected labels are computed here from the stored values, with the pc59 ->
pc459 id list written out (not derived by lmseg), and compared with what the readers decode.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
from PIL import Image

from lmseg.data import get_benchmark
from lmseg.data.prepare.pascal_context import pc59_ids
from lmseg.vocab import get_vocabulary
from tests.data import samples as S
from tests.data.cli import run_cli

scipy_io = pytest.importorskip("scipy.io", reason="converting Pascal Context .mat files needs scipy (vision env)")

# pc59 class k = this 1-based pc459 class id (CAT-Seg / mmsegmentation), written out independently.
KNOWN_PC59_IDS = [
    2, 9, 18, 19, 22, 23, 25, 31, 33, 34, 44, 45, 46, 59, 65, 68, 72, 80, 85, 98, 104, 105, 113, 115, 144, 158, 159,
    162, 187, 189, 207, 220, 232, 258, 259, 260, 284, 295, 296, 308, 324, 326, 347, 349, 354, 355, 360, 366, 368, 397,
    415, 416, 420, 424, 427, 440, 445, 454, 458,
]  # fmt: skip
VOC = "VOCdevkit/VOC2010"
SIZES = {"2008_000002": (20, 30), "2008_000003": (24, 16), "2008_000007": (18, 18)}  # id -> (H, W)
OTHER_SPLIT_ID = "2008_000008"


def save_mat(path, label_map: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    scipy_io.savemat(path, {"LabelMap": label_map.astype(np.uint16)})


def labels_txt_text(names: list[str]) -> str:
    return "".join(f"{i}: {name}\n" for i, name in enumerate(names, start=1))


def build_raw(root) -> dict[str, np.ndarray]:
    """VOC2010 + Pascal Context trainval for the ids of SIZES (val) and one other image; id -> LabelMap."""
    rng = np.random.default_rng(0)
    base = root / VOC
    (base / "JPEGImages").mkdir(parents=True)
    pool = np.array([0, 0, 1, 3, 255, 256, 459, *KNOWN_PC59_IDS])  # unlabelled, non-pc59 classes, all pc59 classes
    label_maps = {}
    for sample_id, (height, width) in {**SIZES, OTHER_SPLIT_ID: (8, 8)}.items():
        pixels = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(base / "JPEGImages" / f"{sample_id}.jpg")
        label_maps[sample_id] = rng.choice(pool, size=(height, width)).astype(np.uint16)
        save_mat(base / "trainval" / f"{sample_id}.mat", label_maps[sample_id])
    (base / "labels.txt").write_text(labels_txt_text(get_vocabulary("pc459").names))
    (base / "ImageSets/Main").mkdir(parents=True)
    (base / "ImageSets/Main/val.txt").write_text("\n".join(SIZES) + "\n")
    del label_maps[OTHER_SPLIT_ID]
    return label_maps


def expected_pc459(label_map: np.ndarray) -> np.ndarray:
    return np.where(label_map == 0, 65535, label_map.astype(np.int64) - 1)


def expected_pc59(label_map: np.ndarray) -> np.ndarray:
    lookup = np.full(460, 255, dtype=np.int64)
    lookup[KNOWN_PC59_IDS] = np.arange(59)
    return lookup[label_map]


# ------------------------------------------------------------------------------ conversions


def test_pc459_conversion_end_to_end(tmp_path, capsys):
    raw, out = tmp_path / "raw", tmp_path / "out"
    label_maps = build_raw(raw)
    code, stdout, _ = run_cli(capsys, "--dataset", "pc459", "--raw-root", raw, "--out-root", out)
    assert code == 0, stdout
    assert "pc459 val: 3 label file(s) written, 0 already there, 3 image(s) linked or copied" in stdout
    assert f"split list: {raw / VOC / 'ImageSets/Main/val.txt'}" in stdout
    assert f"{raw / VOC / 'labels.txt'} agrees with the built-in pc459 class order" in stdout
    assert "3 pairs - the full split has 5105" in stdout and "every label decodes to the class range" in stdout
    dataset = get_benchmark("pc459").open(out, split="val")
    assert dataset.layout == "detectron2" and len(dataset) == 3
    for sample in dataset:
        assert sample.label.dtype == np.uint16
        np.testing.assert_array_equal(sample.label, expected_pc459(label_maps[sample.sample_id]))
    tif = out / VOC / "annotations_detectron2/pc459_val/2008_000002.tif"
    np.testing.assert_array_equal(S.stored(tif), expected_pc459(label_maps["2008_000002"]))
    assert sorted(p.stem for p in (out / VOC / "JPEGImages").iterdir()) == sorted(SIZES)  # only the split's images


def test_pc59_conversion_end_to_end(tmp_path, capsys):
    label_maps = build_raw(tmp_path)
    code, stdout, _ = run_cli(capsys, "--dataset", "pc59", "--raw-root", tmp_path)
    assert code == 0, stdout
    assert "pc59 val: 3 label file(s) written, 0 already there" in stdout and "linked" not in stdout
    assert "59 of 59 classes present" in stdout
    dataset = get_benchmark("pc59").open(tmp_path, split="val")
    assert dataset.layout == "detectron2" and len(dataset) == 3
    for sample in dataset:
        expected = expected_pc59(label_maps[sample.sample_id])
        assert sample.label.dtype == np.uint8 and (expected == 255).any() and (expected != 255).any()
        np.testing.assert_array_equal(sample.label, expected)


def test_pc59_ids_derive_from_the_vocabularies():
    ids = pc59_ids()
    assert len(ids) == 59 and list(ids) == sorted(set(ids)) and 1 <= ids[0] and ids[-1] <= 459
    names = get_vocabulary("pc59").names
    for name, known in (("aeroplane", 2), ("person", 284), ("diningtable", 397), ("wood", 458)):
        assert ids[names.index(name)] == known


def test_idempotent_and_overwrite(tmp_path, capsys):
    build_raw(tmp_path)
    args = ("--dataset", "pc459", "--raw-root", tmp_path)
    assert run_cli(capsys, *args)[0] == 0
    written = tmp_path / VOC / "annotations_detectron2/pc459_val"
    stamps = {p: p.stat().st_mtime_ns for p in written.iterdir()}
    code, stdout, _ = run_cli(capsys, *args)
    assert code == 0 and "0 label file(s) written, 3 already there" in stdout
    assert stamps == {p: p.stat().st_mtime_ns for p in written.iterdir()}
    assert not list(written.glob(".*"))  # no temporary files left
    code, stdout, _ = run_cli(capsys, *args, "--overwrite")
    assert code == 0 and "3 label file(s) written, 0 already there" in stdout


def test_a_stopped_run_is_finished_by_the_next(tmp_path, capsys):
    label_maps = build_raw(tmp_path)
    last = tmp_path / VOC / "trainval/2008_000007.mat"
    bad = label_maps["2008_000007"].copy()
    bad[0, 0] = 460
    save_mat(last, bad)
    assert run_cli(capsys, "--dataset", "pc59", "--raw-root", tmp_path)[0] == 2
    written = tmp_path / VOC / "annotations_detectron2/pc59_val"
    assert sorted(p.name for p in written.iterdir()) == ["2008_000002.png", "2008_000003.png"]
    save_mat(last, label_maps["2008_000007"])
    code, stdout, _ = run_cli(capsys, "--dataset", "pc59", "--raw-root", tmp_path)
    assert code == 0 and "1 label file(s) written, 2 already there" in stdout


def test_split_list_order_of_preference(tmp_path, capsys):
    build_raw(tmp_path)
    base = tmp_path / VOC
    mmseg, catseg = base / "ImageSets/SegmentationContext/val.txt", base / "pascalcontext_val.txt"
    mmseg.parent.mkdir(parents=True)
    mmseg.write_text("2008_000002\n")
    catseg.write_text("2008_000002\n2008_000003\n")
    code, stdout, _ = run_cli(capsys, "--dataset", "pc459", "--raw-root", tmp_path)
    assert code == 0 and f"split list: {mmseg}" in stdout and "1 label file(s) written" in stdout
    mmseg.unlink()
    code, stdout, _ = run_cli(capsys, "--dataset", "pc459", "--raw-root", tmp_path, "--split", "val")
    assert code == 0 and f"split list: {catseg}" in stdout and "1 label file(s) written, 1 already there" in stdout


def test_trainval_and_labels_txt_directly_under_raw_root(tmp_path, capsys):
    raw, out = tmp_path / "raw", tmp_path / "out"
    label_maps = build_raw(raw)
    (raw / VOC / "trainval").rename(raw / "trainval")
    (raw / VOC / "labels.txt").rename(raw / "labels.txt")
    code, stdout, _ = run_cli(capsys, "--dataset", "pc459", "--raw-root", raw, "--out-root", out)
    assert code == 0 and f"{raw / 'labels.txt'} agrees" in stdout
    sample = get_benchmark("pc459").open(out, split="val")[0]
    np.testing.assert_array_equal(sample.label, expected_pc459(label_maps[sample.sample_id]))


def test_labels_txt_is_optional(tmp_path, capsys):
    build_raw(tmp_path)
    (tmp_path / VOC / "labels.txt").unlink()
    code, stdout, _ = run_cli(capsys, "--dataset", "pc459", "--raw-root", tmp_path)
    assert code == 0 and "no labels.txt in" in stdout and "class order not checked" in stdout


# ---------------------------------------------------------------------------------- errors


def _no_trainval(base):
    (base / "trainval").rename(base / "elsewhere")
    return "no Pascal Context label folder: neither " + str(base / "trainval")


def _missing_mat(base):
    (base / "trainval/2008_000003.mat").unlink()
    listed = base / "ImageSets/Main/val.txt"
    return f"1 label file(s) listed in {listed} are missing: {base / 'trainval/2008_000003.mat'}"


def _garbage_mat(base):
    (base / "trainval/2008_000003.mat").write_bytes(b"\x00garbage, not a MATLAB file" * 5)
    return f"cannot read {base / 'trainval/2008_000003.mat'}"


def _no_label_map_variable(base):
    scipy_io.savemat(base / "trainval/2008_000003.mat", {"Other": np.zeros((24, 16), np.uint16)})
    return f"{base / 'trainval/2008_000003.mat'} has no variable 'LabelMap'"


def _float_label_map(base):
    scipy_io.savemat(base / "trainval/2008_000003.mat", {"LabelMap": np.zeros((24, 16))})
    return f"{base / 'trainval/2008_000003.mat'}: LabelMap is float64 (24, 16); expected a 2-D integer array"


def _value_460(base):
    label = np.ones((24, 16), np.uint16)
    label[3, 4] = 460
    save_mat(base / "trainval/2008_000003.mat", label)
    return f"{base / 'trainval/2008_000003.mat'}: label values outside the class range: 460"


def _wrong_size(base):
    save_mat(base / "trainval/2008_000003.mat", np.ones((16, 24), np.uint16))
    return f"{base / 'trainval/2008_000003.mat'} is 24x16 but {base / 'JPEGImages/2008_000003.jpg'} is 16x24"


def _labels_txt_reordered(base):
    names = get_vocabulary("pc459").names
    (base / "labels.txt").write_text(labels_txt_text([names[1], names[0], *names[2:]]))
    return f"{base / 'labels.txt'}, line 1: class 'aeroplane', but the built-in pc459 class 1 is 'accordion'"


def _labels_txt_short(base):
    (base / "labels.txt").write_text(labels_txt_text(get_vocabulary("pc459").names[:400]))
    return f"{base / 'labels.txt'} lists 400 classes; Pascal Context has 459"


def _no_split_list(base):
    (base / "ImageSets/Main/val.txt").unlink()
    return f"no split list for 'val': none of {base / 'ImageSets/SegmentationContext/val.txt'}"


@pytest.mark.parametrize(
    "breaker",
    [
        _no_trainval,
        _missing_mat,
        _garbage_mat,
        _no_label_map_variable,
        _float_label_map,
        _value_460,
        _wrong_size,
        _labels_txt_reordered,
        _labels_txt_short,
        _no_split_list,
    ],
)
@pytest.mark.parametrize("dataset", ["pc59", "pc459"])
def test_bad_download_is_a_clear_error(tmp_path, capsys, breaker, dataset):
    build_raw(tmp_path)
    message = breaker(tmp_path / VOC)
    code, _, stderr = run_cli(capsys, "--dataset", dataset, "--raw-root", tmp_path)
    assert code == 2 and f"error: {message}" in stderr  # main returned: the error was reported, no traceback


def test_without_scipy_the_error_says_to_install_it(tmp_path, capsys, monkeypatch):
    build_raw(tmp_path)
    monkeypatch.setitem(sys.modules, "scipy.io", None)
    code, _, stderr = run_cli(capsys, "--dataset", "pc459", "--raw-root", tmp_path)
    assert code == 2 and "reading Pascal Context .mat files needs scipy: pip install scipy" in stderr

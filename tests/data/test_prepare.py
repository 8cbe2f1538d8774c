"""pipelines.prepare_data: conversions from official raw forms, idempotency, and the check.

Verified on real labels where the raw form can be recovered from a sample (ADE-150 raw PNGs
are the official form; A-847 and Cityscapes raw files are rebuilt from the real prepared
labels by inverting the documented encodings, then converted back). The A-847 id table is
also checked against the real ADE20K per-image annotation (.json) of the sample.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from lmseg.data import open_dataset
from lmseg.data.prepare.tables import ade847_train_ids, cityscapes_train_ids, cocostuff_indices
from tests.data import samples as S
from tests.data.cli import run_cli

REFERENCE = S.SAMPLES.parent / "opencv_reference"


# ------------------------------------------------------------------------------ ADE-150


def test_ade150_conversion_is_reduce_zero_label_and_idempotent(tmp_path, capsys):
    raw, out = tmp_path / "raw", tmp_path / "out"
    expected = S.build_ade150(raw)
    code, stdout, _ = run_cli(capsys, "--dataset", "ade150", "--raw-root", raw, "--out-root", out)
    assert code == 0, stdout
    assert "3 label file(s) written, 0 already there, 3 image(s) linked or copied" in stdout
    assert "3 pairs - the full split has 2000, so this copy is incomplete" in stdout
    assert "every label decodes to the class range" in stdout
    written = out / "ADEChallengeData2016/annotations_detectron2/validation"
    for stem, reduced in expected.items():
        np.testing.assert_array_equal(S.stored(written / f"{stem}.png"), reduced)
    dataset = open_dataset("ade150", out)
    assert dataset.layout == "detectron2" and len(dataset) == 3

    stamps = {p: p.stat().st_mtime_ns for p in written.iterdir()}
    code, stdout, _ = run_cli(capsys, "--dataset", "ade150", "--raw-root", raw, "--out-root", out)
    assert code == 0 and "0 label file(s) written, 3 already there" in stdout
    assert stamps == {p: p.stat().st_mtime_ns for p in written.iterdir()}
    assert not list(written.glob(".*"))  # no temporary files left

    code, stdout, _ = run_cli(capsys, "--dataset", "ade150", "--raw-root", raw, "--out-root", out, "--overwrite")
    assert code == 0 and "3 label file(s) written" in stdout
    raw_label = raw / "ADEChallengeData2016/annotations/validation/ADE_val_00000001.png"
    np.testing.assert_array_equal(S.stored(raw_label), S.stored(S.label_of(S.images(S.ADE150)[0])))  # input untouched


def test_ade150_in_place(tmp_path, capsys):
    S.build_ade150(tmp_path)
    code, stdout, _ = run_cli(capsys, "--dataset", "ade150", "--raw-root", tmp_path)
    assert code == 0 and "linked" not in stdout.splitlines()[0]
    assert open_dataset("ade150", tmp_path).layout == "detectron2"


def test_bad_raw_label_stops_with_the_file_named(tmp_path, capsys):
    S.build_ade150(tmp_path)
    label = tmp_path / "ADEChallengeData2016/annotations/validation/ADE_val_00000002.png"
    values = S.stored(label)
    values[0, 0] = 201
    S.save_label(values, label)
    code, _, stderr = run_cli(capsys, "--dataset", "ade150", "--raw-root", tmp_path)
    assert code == 2 and f"error: {label}: label values outside the class range: 201" in stderr


def test_check_lists_every_broken_sample(tmp_path, capsys):
    S.build_ade150(tmp_path)
    base = tmp_path / "ADEChallengeData2016"
    for stem in ("ADE_val_00000001", "ADE_val_00000003"):
        label = base / f"annotations/validation/{stem}.png"
        values = S.stored(label)
        values[0, 0] = 180
        S.save_label(values, label)
    code, _, stderr = run_cli(capsys, "--dataset", "ade150", "--out-root", tmp_path, "--check-only")
    assert code == 1
    assert "2 broken sample(s)" in stderr
    assert "ADE_val_00000001.png" in stderr and "ADE_val_00000003.png" in stderr


# ------------------------------------------------------------------------------ ADE-847


def build_ade20k_2021_raw(raw, split="validation") -> tuple[np.ndarray, str]:
    """An ADE20K-2021 release folder whose *_seg.png encodes the real A-847 sample label.

    Train id t -> its ADE20K class id c (tables/ade847_ids.tsv) -> R = c // 256 * 10, G = c % 256.
    Ignored pixels get class id 0 ("not labelled" in ADE20K).
    """
    image = S.images(S.ADE847)[0]
    label = S.stored(S.label_of(image, ".tif"))
    to_ade = np.zeros(65536, dtype=np.int64)
    for ade_id, train_id in ade847_train_ids().items():
        to_ade[train_id] = ade_id
    ade = to_ade[label]
    seg = np.zeros((*label.shape, 3), dtype=np.uint8)
    seg[..., 0] = ade // 256 * 10
    seg[..., 1] = ade % 256
    seg[..., 2] = 7  # instance channel, not used for classes
    name = "ADE_val_00009999" if split == "validation" else "ADE_train_00009999"
    folder = raw / "ADE20K_2021_17_01/images/ADE" / split / "urban/street"
    S.place(image, folder / f"{name}.jpg")
    S.save_label(seg, folder / f"{name}_seg.png")
    return label, name


def test_ade847_full_resolution_round_trip(tmp_path, capsys):
    label, name = build_ade20k_2021_raw(tmp_path / "raw")
    out = tmp_path / "out"
    code, stdout, _ = run_cli(
        capsys, "--dataset", "ade847", "--raw-root", tmp_path / "raw", "--out-root", out, "--max-size", 0
    )
    assert code == 0, stdout
    written = out / f"ADE20K_2021_17_01/annotations_detectron2/validation/{name}.tif"
    np.testing.assert_array_equal(S.stored(written), label)
    image = out / f"ADE20K_2021_17_01/images_detectron2/validation/{name}.jpg"
    assert image.read_bytes() == S.images(S.ADE847)[0].read_bytes()  # linked, not re-encoded
    sample = open_dataset("ade847", out)[0]
    assert sample.label.dtype == np.uint16 and sample.image.shape[:2] == label.shape


def test_ade847_shorter_side_512_matches_opencv(tmp_path, capsys):
    build_ade20k_2021_raw(tmp_path)
    code, stdout, _ = run_cli(capsys, "--dataset", "ade847", "--raw-root", tmp_path)
    assert code == 0, stdout
    dataset = open_dataset("ade847", tmp_path)
    sample = dataset[0]
    assert sample.image.shape == (512, 768, 3)
    np.testing.assert_array_equal(sample.label, S.stored(REFERENCE / "ade847_label_nearest_512x768.tif"))
    code, stdout, _ = run_cli(capsys, "--dataset", "ade847", "--raw-root", tmp_path)
    assert "0 label file(s) written, 1 already there" in stdout


def test_ade847_seg_without_image_pairing(tmp_path, capsys):
    build_ade20k_2021_raw(tmp_path)
    folder = tmp_path / "ADE20K_2021_17_01/images/ADE/validation/urban/street"
    (folder / "ADE_val_00009999_seg.png").rename(folder / "elsewhere.png")
    code, _, stderr = run_cli(capsys, "--dataset", "ade847", "--raw-root", tmp_path)
    assert code == 2 and "have no *_seg.png beside them" in stderr and "ADE_val_00009999.jpg" in stderr


def test_ade847_id_table_agrees_with_the_real_ade20k_annotation():
    """Train ids in the real TIFF <-> whole objects listed in the image's ADE20K .json."""
    image = S.images(S.ADE847)[0]
    annotation = json.loads(S.label_of(image, ".json").read_text())["annotation"]
    whole_objects = {int(o["name_ndx"]) for o in annotation["object"] if o["parts"]["part_level"] == 0}
    table = ade847_train_ids()
    label = S.stored(S.label_of(image, ".tif"))
    in_tiff = {int(v) for v in np.unique(label) if v != 65535}
    assert in_tiff == {table[a] for a in whole_objects if a in table}
    assert len(table) == 847 and sorted(table.values()) == list(range(847))


# ----------------------------------------------------------------------------- COCO


def build_stuffthingmaps(raw, pack_images, background_category=124):
    """Raw COCO-Stuff maps (category id - 1) rebuilt from real COCO-Object-81 labels.

    Object k (1..80) -> category of COCO-Stuff index k-1; background -> a stuff category
    (default 124 'gravel'); 255 stays 255 (unlabelled).
    """
    index_to_category = {index: category for category, index in cocostuff_indices().items()}
    base = raw / "coco_stuff164k"
    objects = {}
    for image in pack_images:
        stored = S.stored(S.label_of(image))
        rawmap = np.full(stored.shape, 255, np.uint8)
        for k in np.unique(stored):
            if k == 0:
                rawmap[stored == 0] = background_category - 1
            elif k != 255:
                rawmap[stored == k] = index_to_category[k - 1] - 1
        S.place(image, base / "images/val2017" / image.name)
        S.save_label(rawmap, base / "annotations/val2017" / f"{image.stem}.png")
        objects[image.stem] = stored
    return objects


def test_coco_object_conversion_round_trip(tmp_path, capsys):
    images = S.images(S.COCO_PANOPTIC) + S.images(S.COCO128)[:2]
    objects = build_stuffthingmaps(tmp_path, images)
    code, stdout, _ = run_cli(capsys, "--dataset", "coco_object", "--raw-root", tmp_path)
    assert code == 0, stdout
    dataset = open_dataset("coco_object", tmp_path)
    assert len(dataset) == 4
    for sample in dataset:
        expected = objects[sample.sample_id].copy()
        expected[expected == 255] = 0  # the GroupViT / SCLIP protocol: unlabelled -> background
        np.testing.assert_array_equal(sample.label, expected)


def test_cocostuff171_conversion(tmp_path, capsys):
    images = S.images(S.COCO_PANOPTIC)
    objects = build_stuffthingmaps(tmp_path, images)
    out = tmp_path / "out"
    code, stdout, _ = run_cli(capsys, "--dataset", "cocostuff171", "--raw-root", tmp_path, "--out-root", out)
    assert code == 0, stdout
    assert "2 image(s) linked or copied" in stdout
    gravel = cocostuff_indices()[124]
    for sample in open_dataset("cocostuff171", out):
        stored = objects[sample.sample_id]
        expected = np.where(stored == 0, gravel, np.where(stored == 255, 255, stored.astype(np.int64) - 1))
        np.testing.assert_array_equal(sample.label, expected)


def test_coco_image_without_stuffthingmap(tmp_path, capsys):
    build_stuffthingmaps(tmp_path, S.images(S.COCO_PANOPTIC))
    missing = tmp_path / "coco_stuff164k/annotations/val2017/000000142238.png"
    missing.unlink()
    code, _, stderr = run_cli(capsys, "--dataset", "cocostuff171", "--raw-root", tmp_path)
    assert code == 2 and str(missing) in stderr


# ------------------------------------------------------------------------- Cityscapes


def test_cityscapes_label_ids_to_train_ids_round_trip(tmp_path, capsys):
    image = S.images(S.CITYSCAPES)[0]
    train = S.stored(S.label_of(image))
    first_label_id = {}
    for label_id, train_id in sorted(cityscapes_train_ids().items()):
        first_label_id.setdefault(train_id, label_id)
    label_ids = np.vectorize(first_label_id.__getitem__)(train).astype(np.uint8)
    base = tmp_path / "cityscapes"
    stem = image.stem
    S.place(image, base / f"leftImg8bit/val/frankfurt/{stem}_leftImg8bit.png")
    S.save_label(label_ids, base / f"gtFine/val/frankfurt/{stem}_gtFine_labelIds.png")
    code, stdout, _ = run_cli(capsys, "--dataset", "cityscapes19", "--raw-root", tmp_path)
    assert code == 0, stdout
    np.testing.assert_array_equal(open_dataset("cityscapes19", tmp_path)[0].label, train)
    # an id that Cityscapes does not have is an error naming the file
    label_ids[0, 0] = 77
    bad = S.save_label(label_ids, base / f"gtFine/val/frankfurt/{stem}_gtFine_labelIds.png")
    code, _, stderr = run_cli(capsys, "--dataset", "cityscapes19", "--raw-root", tmp_path, "--overwrite")
    assert code == 2 and f"{bad}: label values outside the class range: 77" in stderr


def test_cityscapes_train_id_table():
    table = cityscapes_train_ids()
    assert sorted(v for v in table.values() if v != 255) == list(range(19))
    assert table[7] == 0 and table[26] == 13 and table[0] == 255


# ------------------------------------------------------------------ nothing to convert


def test_voc_needs_no_conversion_and_is_checked(tmp_path, capsys):
    S.build_voc(tmp_path)
    code, stdout, _ = run_cli(capsys, "--dataset", "voc21", "--raw-root", tmp_path)
    assert code == 0
    assert "no conversion needed" in stdout and "3 pairs - the full split has 1449" in stdout


def test_conversion_needs_raw_root(tmp_path, capsys):
    code, _, stderr = run_cli(capsys, "--dataset", "ade150", "--out-root", tmp_path)
    assert code == 2 and "needs --raw-root" in stderr


def test_cli_help_lists_datasets(capsys):
    with pytest.raises(SystemExit) as info:
        run_cli(capsys, "--help")
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "ade847" in out and "Exit status" in out
    assert os.linesep in out


def test_out_root_that_is_a_file_is_refused(tmp_path, capsys):
    (tmp_path / "taken").write_text("a file")
    code, _, err = run_cli(capsys, "--dataset", "ade150", "--raw-root", tmp_path, "--out-root", tmp_path / "taken")
    assert code == 2 and err.startswith("error: --out-root") and "existing file" in err and "Traceback" not in err


def test_negative_max_size_is_refused(tmp_path, capsys):
    code, _, err = run_cli(capsys, "--dataset", "ade847", "--raw-root", tmp_path, "--out-root", tmp_path / "out",
                           "--max-size", "-1")
    assert code == 2 and err == "error: --max-size must be at least 0, got -1\n"
    assert not (tmp_path / "out").exists()

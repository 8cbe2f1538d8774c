"""``python -m pipelines.segment`` and lmseg.inference.outputs / overlay."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="segment decodes in torch DataLoader workers; run with the vision "
                            "environment")

from PIL import Image  # noqa: E402

from lmseg.errors import LmsegError  # noqa: E402
from lmseg.inference.outputs import find_images, segment_files  # noqa: E402
from lmseg.inference.overlay import LEGEND_WIDTH, colorize, draw_overlay, palette  # noqa: E402
from pipelines.segment import main  # noqa: E402
from tests.data.samples import ADE150, CAMVID, images  # noqa: E402
from tests.pipelines.fake_models import PixelSegmenter  # noqa: E402


def segment_cli(*args) -> int:
    return main([str(a) for a in args])


@pytest.fixture
def photos(tmp_path):
    """A folder of real photos: 2 ADE images, a CamVid PNG in a sub-folder, and a truncated JPEG."""
    folder = tmp_path / "photos"
    (folder / "street").mkdir(parents=True)
    for image in images(ADE150)[:2]:
        shutil.copy(image, folder / image.name)
    shutil.copy(images(CAMVID)[0], folder / "street" / images(CAMVID)[0].name)
    (folder / "broken.jpg").write_bytes(images(ADE150)[2].read_bytes()[:400])
    (folder / "notes.txt").write_text("not an image")
    return folder


def test_folder_writes_labels_overlays_scores_and_reports_the_bad_image(photos, tmp_path, capsys):
    out = tmp_path / "out"
    code = segment_cli(photos, "--model", "fake_pixel", "--classes", "cat,dog,sofa;couch", "--output", out, "--scores")
    assert code == 1  # one bad image, the others done
    captured = capsys.readouterr()
    assert "broken.jpg" in captured.err and "Traceback" not in captured.err
    assert "segmented 3 image(s) into 3 classes" in captured.out

    model = PixelSegmenter()
    for image_path, stem in [(photos / images(ADE150)[0].name, images(ADE150)[0].stem),
                             (photos / "street" / images(CAMVID)[0].name, "street/" + images(CAMVID)[0].stem)]:
        rgb = np.asarray(Image.open(image_path).convert("RGB"))
        with Image.open(out / f"{stem}_label.png") as label_file:
            assert label_file.mode == "L"
            np.testing.assert_array_equal(np.asarray(label_file), model.label_map(rgb, 3))
        with Image.open(out / f"{stem}_overlay.png") as overlay:
            assert overlay.size == (rgb.shape[1] + LEGEND_WIDTH, rgb.shape[0])
        score_files = sorted((out / f"{stem}_scores").iterdir())
        assert [p.name for p in score_files] == ["000_cat.png", "001_dog.png", "002_sofa.png"]
        with Image.open(score_files[1]) as dog:
            expected = np.where(model.label_map(rgb, 3) == 1, 230, 26)  # round(255 * 0.9), round(255 * 0.1)
            np.testing.assert_array_equal(np.asarray(dog), expected)
    assert not list(out.glob("broken*"))
    assert (out / "classes.txt").read_text() == "0\tcat\n1\tdog\n2\tsofa\n"
    assert sorted(p.name for p in photos.iterdir()) == sorted(  # inputs untouched
        [images(ADE150)[0].name, images(ADE150)[1].name, "street", "broken.jpg", "notes.txt"]
    )


def test_more_than_255_classes_give_a_16_bit_label_map(tmp_path):
    image = images(ADE150)[0]
    out = tmp_path / "out"
    code = segment_cli(image, "--model", "fake_pixel", "--set", "offset=800", "--dataset", "ade847", "--output", out)
    assert code == 0
    with Image.open(out / f"{image.stem}_label.png") as label_file:
        values = np.asarray(label_file)
    rgb = np.asarray(Image.open(image).convert("RGB"))
    expected = PixelSegmenter(offset=800).label_map(rgb, 847)
    assert values.dtype == np.uint16 and expected.max() > 255
    np.testing.assert_array_equal(values, expected)


@pytest.mark.parametrize("where", ["same", "inside"])
def test_output_folder_in_the_input_folder_is_refused(photos, where, capsys):
    out = photos if where == "same" else photos / "results"
    before = sorted(p.relative_to(photos) for p in photos.rglob("*"))
    assert segment_cli(photos, "--model", "fake_pixel", "--classes", "cat,dog", "--output", out) == 2
    err = capsys.readouterr().err
    assert "input folder" in err and "Traceback" not in err
    assert sorted(p.relative_to(photos) for p in photos.rglob("*")) == before  # nothing written


def test_single_image_next_to_itself_is_refused(tmp_path, capsys):
    image = tmp_path / "cat.jpg"
    shutil.copy(images(ADE150)[0], image)
    assert segment_cli(image, "--model", "fake_pixel", "--classes", "cat", "--output", tmp_path) == 2
    assert "input folder" in capsys.readouterr().err


@pytest.mark.parametrize(
    "args, message",
    [
        (["{tmp}/missing.jpg", "--classes", "cat"], "does not exist"),
        (["{tmp}/empty", "--classes", "cat"], "holds no images"),
        (["{image}", "--vocabulary", "{tmp}/none.txt"], "none.txt"),
        (["{image}", "--classes", "cat,cat"], "cat"),
        (["{image}", "--dataset", "ade9999"], "ade9999"),
        (["{image}", "--classes", "cat", "--model", "nope"], "unknown segmenter 'nope'"),
    ],
)
def test_bad_input_exits_2(args, message, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    args = [a.format(tmp=tmp_path, image=images(ADE150)[0]) for a in args]
    if "--model" not in args:
        args += ["--model", "fake_pixel"]
    assert segment_cli(*args, "--output", tmp_path / "out") == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and "Traceback" not in err


def test_duplicate_stems_do_not_collide(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    rgb = np.asarray(Image.open(images(ADE150)[0]).convert("RGB"))[:64, :64]
    Image.fromarray(rgb).save(folder / "a.png")
    Image.fromarray(rgb).save(folder / "a.jpg")
    assert [stem for _, stem in find_images(folder)] == ["a_jpg", "a_png"]


def test_palette_and_overlay():
    colours = palette(300)
    assert colours.shape == (300, 3) and colours.dtype == np.uint8
    assert len({tuple(c) for c in colours}) == 300  # all distinct
    np.testing.assert_array_equal(palette(10), colours[:10])  # stable across vocabulary sizes
    label = np.array([[0, 1], [2, 2]])
    np.testing.assert_array_equal(colorize(label, 3)[1, 1], colours[2])
    image = np.zeros((2, 2, 3), np.uint8)
    only_colours = np.asarray(draw_overlay(image, label, ["a", "b", "c"], alpha=1.0, legend=False))
    np.testing.assert_array_equal(only_colours, colorize(label, 3))
    with pytest.raises(ValueError):
        draw_overlay(image, label[:1], ["a", "b", "c"])


def test_python_api_with_a_real_tiny_model(tiny_model, tmp_path):
    from lmseg import create_segmenter

    source = tmp_path / "in"
    source.mkdir()
    for image in images(CAMVID)[:2]:  # 480x360
        Image.open(image).resize((160, 120)).save(source / image.name)
    summary = segment_files(create_segmenter(tiny_model), source, ["road", "sky", "car, automobile"], tmp_path / "out",
                            scores=True)
    assert summary.ok and len(summary.done) == 2
    for image in images(CAMVID)[:2]:
        with Image.open(tmp_path / "out" / f"{image.stem}_label.png") as label_file:
            values = np.asarray(label_file)
        assert values.shape == (120, 160) and values.max() < 3
        assert len(list((tmp_path / "out" / f"{image.stem}_scores").iterdir())) == 3
    with pytest.raises(LmsegError, match="input folder"):
        segment_files(create_segmenter(tiny_model), source, ["road"], source)


def test_one_bad_image_never_stops_the_folder(tmp_path, capsys):
    """Unreadable, too small to decode, and refused by the model (ValueError): each is named on an
    error: line and counted; every other image is written; exit status 1."""
    folder = tmp_path / "in"
    folder.mkdir()
    rgb = np.asarray(Image.open(images(ADE150)[0]).convert("RGB"))
    Image.fromarray(rgb[:100, :120]).save(folder / "a_ok.png")
    Image.fromarray(np.ascontiguousarray(rgb[:40, :400])).save(folder / "b_wide.png")  # 10:1, the model refuses
    Image.fromarray(rgb[:1, :50]).save(folder / "c_tiny.png")  # 1 pixel high: refused when decoded
    (folder / "d_truncated.jpg").write_bytes(images(ADE150)[1].read_bytes()[:300])
    Image.fromarray(rgb[:90, :90]).save(folder / "e_ok.png")
    out = tmp_path / "out"
    assert segment_cli(folder, "--model", "fake_picky", "--classes", "a,b", "--output", out, "--workers", 0) == 1
    captured = capsys.readouterr()
    errors = [line for line in captured.err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 3 and "Traceback" not in captured.err, captured.err
    assert "b_wide.png: the model failed on this image (ValueError: aspect ratio 10:1" in errors[0]
    assert "c_tiny.png" in errors[1] and "d_truncated.jpg" in errors[2]
    assert "segmented 2 image(s) into 2 classes" in captured.out and "3 failed" in captured.out
    assert sorted(p.name for p in out.glob("*_label.png")) == ["a_ok_label.png", "e_ok_label.png"]


def test_shards_split_the_sorted_images_into_blocks(photos, tmp_path, capsys):
    out = tmp_path / "out"
    for index in (0, 1):
        segment_cli(photos, "--model", "fake_pixel", "--classes", "a,b", "--output", out,
                    "--shard-index", index, "--num-shards", 2)
    # 4 images in sorted order (2 ADE, broken.jpg, street/...): blocks [0, 2) and [2, 4); all but broken.jpg written
    assert len(list(out.rglob("*_label.png"))) == 3
    assert segment_cli(photos, "--model", "fake_pixel", "--classes", "a", "--shard-index", 1) == 2
    assert "give both --shard-index and --num-shards" in capsys.readouterr().err


@pytest.mark.parametrize(("args", "message"), [
    (["--set", "threshold=[0.5"], "neither valid JSON nor valid YAML"),
    (["--set", "no_value"], "--set expects KEY=VALUE"),
    (["--set", "colour=red"], "does not accept these options"),
])
def test_bad_options_and_an_output_that_is_a_file(args, message, tmp_path, capsys):
    image = images(ADE150)[0]
    assert segment_cli(image, "--model", "fake_pixel", "--classes", "a", "--output", tmp_path / "o", *args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and "Traceback" not in err
    (tmp_path / "taken").write_text("x")
    assert segment_cli(image, "--model", "fake_pixel", "--classes", "a", "--output", tmp_path / "taken") == 2
    assert "is an existing file, not a folder" in capsys.readouterr().err


@pytest.mark.parametrize(("device", "message"), [
    ("bogus", "error: --device 'bogus' is not a device name (cpu, cuda, cuda:1, mps, ...)\n"),
    pytest.param("cuda", "error: --device cuda: this machine has no such device (",
                 marks=pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA device")),
])
def test_a_device_this_machine_lacks_is_one_line_before_any_model_loads(device, message, tmp_path, capsys,
                                                                         monkeypatch):
    import lmseg.registry

    monkeypatch.setattr(lmseg.registry, "create_segmenter", lambda *a, **k: pytest.fail("a model was loaded"))
    image = images(ADE150)[0]
    assert segment_cli(image, "--model", "fake_pixel", "--classes", "a", "--device", device,
                       "--output", tmp_path / "o") == 2
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1
    assert not (tmp_path / "o").exists()

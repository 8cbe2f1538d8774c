"""The page's request handler without a browser: bounds, errors, results, caching, time limit."""

from __future__ import annotations

import re
import struct
import threading
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lmseg.data.image_io import read_label_file
from lmseg.errors import LmsegError
from lmseg.registry import available_segmenters, create_segmenter
from lmseg.web.limits import WebLimits, read_upload
from lmseg.web.render import by_share, class_rows, legend_html
from lmseg.web.samples import SAMPLES, samples_dir
from lmseg.web.service import SegmentService
from tests.tolerances import fp32_tolerance

STREET = samples_dir() / "ade_val_00000003_street.jpg"  # 400x300, a real photograph


@pytest.fixture(autouse=True)
def _private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LMSEG_CACHE_DIR", str(tmp_path / "cache"))  # LMSeg's on-disk embedding cache


@pytest.fixture(scope="module")
def lmseg_tiny():
    return create_segmenter("lmseg_tiny")


@pytest.fixture
def service(lmseg_tiny, tmp_path: Path):
    service = SegmentService(lmseg_tiny, "lmseg_tiny", output_root=tmp_path / "out", demo_weights=True)
    yield service
    service.close()


def png_header_only(path: Path, width: int, height: int) -> Path:
    """A PNG whose header claims ``width x height`` RGB pixels but holds almost no pixel data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + chunk(b"IEND", b""))
    return path


# ---- bounds and errors ----------------------------------------------------------------------


def test_samples_exist_and_are_real_photographs() -> None:
    assert len(SAMPLES) >= 3
    for sample in SAMPLES:
        with Image.open(samples_dir() / sample.file) as image:
            assert image.format == "JPEG" and min(image.size) >= 300


def test_upload_too_large_is_refused_before_reading(tmp_path: Path) -> None:
    big = tmp_path / "big.jpg"
    big.write_bytes(STREET.read_bytes() + b"\0" * (1024 * 1024))
    with pytest.raises(LmsegError, match=r"the file is 1\.0 MB; this page accepts images up to 1 MB"):
        read_upload(big, WebLimits(max_upload_bytes=1024 * 1024))


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_decompression_bomb_is_refused_from_its_header(tmp_path: Path) -> None:
    large = png_header_only(tmp_path / "large.png", 10_000, 10_000)  # 100 million pixels in ~100 bytes
    with pytest.raises(LmsegError, match=r"10000x10000 = 100 million pixels; this page accepts up to 40 million"):
        read_upload(large, WebLimits())
    bomb = png_header_only(tmp_path / "bomb.png", 60_000, 60_000)  # past Pillow's own bomb limit
    with pytest.raises(LmsegError, match=r"more than 179 million pixels \(refused as a decompression bomb\)"):
        read_upload(bomb, WebLimits())
    # The same header within the pixel bound does get decoded, and fails as the truncated file it is:
    # so the refusal above came from the header alone.
    with pytest.raises(LmsegError, match="cannot read image"):
        read_upload(png_header_only(tmp_path / "small.png", 50, 50), WebLimits())


def test_unreadable_files_are_named(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("not an image")
    with pytest.raises(LmsegError, match="'notes.txt' is not an image this page can read"):
        read_upload(text, WebLimits())
    with pytest.raises(LmsegError, match="no image was received"):
        read_upload(tmp_path / "missing.png", WebLimits())


def test_class_list_errors(service: SegmentService) -> None:
    for empty in ("", "   ", None):
        with pytest.raises(LmsegError, match="type at least one class"):
            service.segment(STREET, empty)
    with pytest.raises(LmsegError, match="listed more than once"):
        service.segment(STREET, "cat, dog, cat")
    with pytest.raises(LmsegError, match="unknown vocabulary 'nope'"):
        service.segment(STREET, "", builtin="nope")
    with pytest.raises(LmsegError, match="no image was received"):
        service.segment(None, "road, sky")


def test_typed_classes_and_a_vocabulary_together_are_refused(service: SegmentService) -> None:
    with pytest.raises(LmsegError, match="both classes and the vocabulary 'voc21' were given; clear the classes"):
        service.segment(STREET, "road, sky", builtin="voc21")


def test_classes_one_per_line_are_separate_classes(service: SegmentService) -> None:
    result = service.segment(STREET, "road\nsky;heaven\r\nbuilding,\n car\n")
    assert [row.name for row in result.rows] == ["road", "sky", "building", "car"]


def test_a_huge_class_name_is_refused_with_the_page_limit(service: SegmentService) -> None:
    huge = "a" * 1_000_000
    with pytest.raises(LmsegError, match=r"is 1,000,000 characters long; class names and synonyms have at most 100"):
        service.segment(STREET, f"road, {huge}")
    with pytest.raises(LmsegError, match="101 characters long"):
        service.segment(STREET, f"road;{'b' * 101}")  # synonyms too
    assert [row.name for row in service.segment(STREET, f"road, {'c' * 100}").rows] == ["road", "c" * 100]


def test_only_vocabularies_within_the_class_limit_are_offered(lmseg_tiny, tmp_path: Path) -> None:
    service = SegmentService(lmseg_tiny, "lmseg_tiny", output_root=tmp_path)
    try:
        offered = dict(service.offered_vocabularies())
        assert offered["ade150"] == 150 and offered["voc21"] == 21
        assert "ade847" not in offered and "imagenet21k" not in offered and max(offered.values()) <= 200
    finally:
        service.close()


def test_too_many_classes(lmseg_tiny, tmp_path: Path) -> None:
    small = SegmentService(lmseg_tiny, "lmseg_tiny", limits=WebLimits(max_classes=3), output_root=tmp_path)
    try:
        with pytest.raises(LmsegError, match="4 classes asked for; this page segments into at most 3"):
            small.segment(STREET, "a, b, c, d")
        with pytest.raises(LmsegError, match="150 classes asked for"):
            small.segment(STREET, "", builtin="ade150")
    finally:
        small.close()


def test_attribute_table_refused_for_a_model_without_one(lmseg_tiny, tmp_path: Path) -> None:
    other = SegmentService(_Blocking(lmseg_tiny), "other", output_root=tmp_path)  # a segmenter without the option
    try:
        assert not other.uses_attribute_table
        with pytest.raises(LmsegError, match="other uses no attribute table"):
            other.segment(STREET, "road, sky", attribute_table=tmp_path / "t.parquet")
    finally:
        other.close()


# ---- results --------------------------------------------------------------------------------


def test_result_lists_exactly_the_typed_classes(service: SegmentService) -> None:
    result = service.segment(STREET, "road, sky;heaven, building, car")
    assert [row.name for row in result.rows] == ["road", "sky", "building", "car"]
    assert sum(row.share for row in result.rows) == pytest.approx(1.0)
    for row in result.rows:
        assert row.share == 0 or 0 <= row.mean_score <= 1
    legend = re.findall(r'class="lmseg-class-name">([^<]*)<', result.legend)
    assert legend == [row.name for row in by_share(result.rows) if row.share > 0]
    label = read_label_file(result.label_path)
    assert label.shape == (300, 400) and label.max() < 4
    shares = np.bincount(label.ravel(), minlength=4) / label.size
    np.testing.assert_allclose(shares, [row.share for row in result.rows])
    with Image.open(result.overlay_path) as overlay:  # full resolution, with the segment command's legend
        assert overlay.height >= 300 and overlay.width > 400
    assert result.overlay.shape == (300, 400, 3) and result.heat.shape == (4, 300, 400)


def test_mean_score_is_the_score_of_the_chosen_class(lmseg_tiny, service: SegmentService) -> None:
    result = service.segment(STREET, "road, sky, tree")
    scores = lmseg_tiny.predict(STREET, ["road", "sky", "tree"], return_scores=True)
    for row in result.rows:
        mask = scores.label_map == row.index
        if mask.any():
            # the same scores in [0, 1] averaged in another order: one sum over the class's pixels
            bound = fp32_tolerance(terms=int(mask.sum()))["atol"]
            assert row.mean_score == pytest.approx(float(scores.scores[row.index][mask].mean()), abs=bound)


def test_builtin_vocabulary(service: SegmentService) -> None:
    result = service.segment(STREET, "", builtin="voc21")
    assert len(result.rows) == 21 and result.rows[0].name == "background"


def test_legend_lists_the_classes_present_in_the_tables_order() -> None:
    labels = np.array([[2, 2, 2, 0], [2, 2, 0, 0]])  # class 1 and 3 absent; 2 has the most pixels
    rows = class_rows(labels, None, ["wall", "sky", "road", "car"])
    assert [row.name for row in by_share(rows)] == ["road", "wall", "sky", "car"]  # no pixels: vocabulary order
    legend = legend_html(rows)
    assert re.findall(r'class="lmseg-class-name">([^<]*)<', legend) == ["road", "wall"]
    assert re.findall(r'class="lmseg-share">([^<]*)<', legend) == ["62.5%", "37.5%"]
    tiny = class_rows(np.array([0] * 9999 + [1]), None, ["sky", "kite"])
    assert re.findall(r'class="lmseg-share">([^<]*)<', legend_html(tiny)) == ["100.0%", "&lt;0.1%"]


# ---- caching and the time limit -------------------------------------------------------------


def test_text_embeddings_are_encoded_once_per_vocabulary(lmseg_tiny, service, monkeypatch) -> None:
    clip = lmseg_tiny.model.clip
    calls: list[int] = []
    encode = clip.encode_text

    def counting(texts, *args, **kwargs):
        calls.append(len(texts))
        return encode(texts, *args, **kwargs)

    monkeypatch.setattr(clip, "encode_text", counting)
    service.segment(STREET, "lamp post, traffic sign")
    first = len(calls)
    assert first > 0
    service.segment(STREET, "lamp post, traffic sign")
    service.segment(samples_dir() / "ade_val_00000001_house.jpg", "lamp post,  traffic sign")
    assert len(calls) == first  # same classes: no text encoding at all
    service.segment(STREET, "lamp post, bus")
    assert len(calls) > first
    assert service.segmenter is lmseg_tiny  # one model for every request


class _Blocking:
    """Fault injection: a real segmenter whose first prediction waits until released."""

    def __init__(self, segmenter) -> None:
        self.segmenter = segmenter
        self.release = threading.Event()
        self.calls = 0

    def predict(self, image, vocabulary, *, return_scores=False):
        self.calls += 1
        if self.calls == 1:
            self.release.wait(30)
        return self.segmenter.predict(image, vocabulary, return_scores=return_scores)


def test_time_limit_answers_and_the_service_keeps_serving(lmseg_tiny, tmp_path: Path) -> None:
    slow = _Blocking(lmseg_tiny)
    service = SegmentService(slow, "slow", limits=WebLimits(time_limit_s=3), output_root=tmp_path)
    try:
        with pytest.raises(LmsegError, match="took longer than this page's limit of 3 s"):
            service.segment(STREET, "road, sky")
        slow.release.set()
        result = service.segment(STREET, "road, sky")
        assert [row.name for row in result.rows] == ["road", "sky"]
    finally:
        slow.release.set()
        service.close()


# ---- attribute tables -----------------------------------------------------------------------


def write_attribute_table(path: Path, names: list[str]) -> Path:
    from datetime import datetime, timezone

    from lmseg.attributes.store import AttributeRow, rows_to_table, write_table

    rows = [
        AttributeRow(dataset="custom", class_index=i, class_name=name, colour=("grey",), shape=("flat", "long"),
                     texture=("rough",), model="hand-written", instruction_sha256="0" * 64,
                     created_at=datetime(2026, 1, 1, tzinfo=timezone.utc), sampling="{}")
        for i, name in enumerate(names)
    ]
    write_table(rows_to_table(rows), path)
    return path


def test_attribute_table_is_used_for_one_request(lmseg_tiny, service: SegmentService, tmp_path: Path) -> None:
    plain = service.segment(STREET, "road, sky")
    table = write_attribute_table(tmp_path / "road_sky.parquet", ["road", "sky"])
    enriched = service.segment(STREET, "road, sky", attribute_table=table)
    assert [row.name for row in enriched.rows] == ["road", "sky"]
    assert not np.array_equal(plain.heat, enriched.heat)  # other prompts, other scores
    assert lmseg_tiny.attribute_table is None  # the model's own setting is back for the next request
    np.testing.assert_array_equal(service.segment(STREET, "road, sky").heat, plain.heat)


@pytest.mark.parametrize("name", ["trident_tiny", "mgca_tiny", "mrovseg_tiny"])
def test_every_method_uses_a_table_for_one_request(name: str, tmp_path: Path) -> None:
    segmenter = create_segmenter(name)
    service = SegmentService(segmenter, name, output_root=tmp_path / "out")
    try:
        assert service.uses_attribute_table
        plain = service.segment(STREET, "road, sky")
        table = write_attribute_table(tmp_path / "road_sky.parquet", ["road", "sky"])
        assert not np.array_equal(service.segment(STREET, "road, sky", attribute_table=table).heat, plain.heat)
        assert segmenter.attribute_table is None
        np.testing.assert_array_equal(service.segment(STREET, "road, sky").heat, plain.heat)
    finally:
        service.close()


def test_attribute_table_of_other_classes_is_refused(service: SegmentService, tmp_path: Path) -> None:
    table = write_attribute_table(tmp_path / "other.parquet", ["cat", "dog"])
    with pytest.raises(LmsegError, match="attribute table row 0 is for 'cat'"):
        service.segment(STREET, "road, sky", attribute_table=table)
    text = tmp_path / "notes.parquet"
    text.write_text("not parquet")
    with pytest.raises(LmsegError, match="is corrupt or not a Parquet file"):
        service.segment(STREET, "road, sky", attribute_table=text)


def test_only_recent_downloads_are_kept(lmseg_tiny, monkeypatch: pytest.MonkeyPatch) -> None:
    import lmseg.web.service as service_module

    monkeypatch.setattr(service_module, "KEEP_REQUESTS", 2)
    service = SegmentService(lmseg_tiny, "lmseg_tiny")
    try:
        paths = [service.segment(STREET, "road, sky").label_path for _ in range(3)]
        assert [p.exists() for p in paths] == [False, True, True]
    finally:
        service.close()
    assert not service.output_root.exists()


@pytest.mark.parametrize("name", [n for n in available_segmenters() if n.endswith("_tiny") and n != "lmseg_tiny"])
def test_every_tiny_model_serves_the_page(name: str, tmp_path: Path) -> None:
    service = SegmentService(create_segmenter(name), name, output_root=tmp_path)
    try:
        result = service.segment(STREET, "road, sky;heaven, building")
        assert [row.name for row in result.rows] == ["road", "sky", "building"]
        assert result.heat.shape == (3, 300, 400) and read_label_file(result.label_path).shape == (300, 400)
    finally:
        service.close()

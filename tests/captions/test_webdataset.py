"""Reading image-caption pairs: webdataset tar files (good and bad), tables, deterministic access."""

from __future__ import annotations

import io
import logging
import tarfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lmseg.captions.sources import TablePairs, TarPairs
from lmseg.captions.table import read_caption_table
from lmseg.captions.webdataset import SkipLog, iter_tars, list_tars, scan_tar
from lmseg.errors import LmsegError
from tests.captions.fixture import CAPTIONS_CSV, fixture_pairs, fixture_tars


def _tar(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_written_tars_read_back_exactly(tmp_path: Path) -> None:
    pairs = fixture_pairs()
    tars = fixture_tars(tmp_path / "tars")
    assert [p.name for p in tars] == ["00000.tar", "00001.tar", "00002.tar"]
    with tarfile.open(tars[0]) as tar:  # img2dataset's member layout
        assert tar.getnames()[:3] == ["000000000.jpg", "000000000.txt", "000000000.json"]
    skips = SkipLog()
    read = list(iter_tars(list_tars(tmp_path / "tars"), skips))
    assert not skips.counts
    assert [r.caption for r in read] == [p.caption.strip() for p in pairs]
    assert all(r.read_image_bytes() == p.read_image_bytes() for r, p in zip(read, pairs))
    assert list_tars(str(tmp_path / "tars" / "0000[12].tar")) == tars[1:]


def test_bad_tars_are_counted_named_and_skipped(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    good = fixture_pairs()[0].read_image_bytes()
    folder = tmp_path / "tars"
    folder.mkdir()
    _tar(folder / "a.tar", {
        "k1.jpg": good, "k1.txt": b"A giraffe next to a tree.",                  # fine
        "k2.jpg": good, "k2.txt": b"   ",                                          # empty caption
        "k3.jpg": good,                                                            # no caption
        "k4.mp3": b"ID3", "k4.txt": b"a song",                                     # no image
        "k5.jpg": good, "k5.txt": b"It is very nice.", "k5.cls": b"3",             # no noun; extra member
        "k6.png": good, "k6.txt": "caf\xe9".encode("latin-1"),                     # not UTF-8
        "k7.jpg": b"not an image", "k7.txt": b"A broken picture of a cat.",       # undecodable (found later)
    })
    (folder / "b.tar").write_bytes(b"\x00garbage" * 300)                          # not a tar at all
    whole = _tar(tmp_path / "whole.tar", {f"x{i}.{e}": good if e == "jpg" else b"a cat" for i in range(3)
                                          for e in ("jpg", "txt")})
    (folder / "c.tar").write_bytes(whole.read_bytes()[: len(whole.read_bytes()) // 2])  # truncated
    skips = SkipLog()
    with caplog.at_level(logging.WARNING, logger="lmseg.captions.webdataset"):
        samples = list(iter_tars(list_tars(folder), skips))
    keys = [s.key for s in samples]
    assert keys == ["k1", "k5", "k7", "x0"]  # c.tar keeps the complete sample before the cut
    assert skips.counts == {"empty_caption": 1, "no_caption": 1, "no_image": 1, "non_image_member": 2,
                            "bad_caption": 1, "corrupt_tar": 2}
    text = caplog.text
    assert "a.tar:k2" in text and "a.tar:k3" in text and "b.tar" in text and "c.tar" in text
    assert "corrupt_tar: 2" in skips.summary()


def test_garbage_inside_a_tar_is_reported(tmp_path: Path) -> None:
    whole = _tar(tmp_path / "w.tar", {"a.jpg": b"x" * 600, "a.txt": b"a dog", "b.jpg": b"y" * 600, "b.txt": b"a cat"})
    data = bytearray(whole.read_bytes())
    with tarfile.open(whole) as tar:
        at = tar.getmember("b.jpg").offset
    data[at:at + 512] = b"\x07" * 512  # overwrite the header of sample b's image
    (tmp_path / "bad.tar").write_bytes(bytes(data))
    skips = SkipLog()
    assert [s.key for s in scan_tar(tmp_path / "bad.tar", skips)] == ["a"]
    assert skips.counts["corrupt_tar"] == 1


def test_caption_tables_csv_and_parquet(tmp_path: Path) -> None:
    image = CAPTIONS_CSV.parent / "images" / "000000000009.jpg"
    (tmp_path / "pairs.csv").write_text(
        f"image,caption\n{image},Food in trays.\n{image},\nmissing.jpg,A cat.\n", encoding="utf-8")
    skips = SkipLog()
    rows = read_caption_table(tmp_path / "pairs.csv", skips)
    assert [r.caption for r in rows] == ["Food in trays."] and dict(skips.counts) == {"empty_caption": 1, "no_image": 1}
    pq.write_table(pa.table({"path": [str(image), None], "text": ["Bread.", "x"]}), tmp_path / "pairs.parquet")
    rows = read_caption_table(tmp_path / "pairs.parquet", SkipLog(), image_column="path", caption_column="text")
    assert [r.caption for r in rows] == ["Bread."]
    with pytest.raises(LmsegError, match="no column"):
        read_caption_table(tmp_path / "pairs.csv", SkipLog(), caption_column="alt")
    with pytest.raises(LmsegError, match="no webdataset tar files"):
        list_tars(tmp_path / "nothing-*.tar")


def test_csv_text_a_bom_a_long_caption_and_a_latin1_byte(tmp_path: Path) -> None:
    """A byte-order mark does not hide the first column; a 1 MB caption is read whole (the csv
    module's default field limit is 128 KiB); a byte that is not UTF-8 is an error naming the
    file, line and column, never a UnicodeDecodeError traceback."""
    image = CAPTIONS_CSV.parent / "images" / "000000000009.jpg"
    long_caption = "A cat " + "very " * 200_000 + "long."
    table = tmp_path / "pairs.csv"
    table.write_bytes(f"\ufeffimage,caption\n{image},Food.\n{image},{long_caption}\n".encode("utf-8"))
    assert [len(r.caption) for r in read_caption_table(table, SkipLog())] == [5, len(long_caption)]
    table.write_bytes(f"image,caption\n{image},Food.\n{image},Caf".encode() + "\xe9 au lait.\n".encode("latin-1"))
    with pytest.raises(LmsegError, match=rf"{table}, line 3, column {len(str(image)) + 5}: byte 0xe9 is not UTF-8"):
        read_caption_table(table, SkipLog())


def test_pair_order_is_a_function_of_seed_epoch_position(tmp_path: Path) -> None:
    tars = fixture_tars(tmp_path / "tars", per_tar=5)
    a, b = TarPairs(tars, 3, SkipLog(), cached_tars=1), TarPairs(tars, 3, SkipLog())
    assert len(a) == 16
    epoch0 = [a.pair(0, p).key for p in range(16)]
    assert sorted(epoch0) == sorted(s.key for s in iter_tars(tars, SkipLog()))  # a permutation
    assert [b.pair(0, p).key for p in reversed(range(16))] == epoch0[::-1]  # random access, any order
    assert [a.pair(1, p).key for p in range(16)] != epoch0
    table = TablePairs(fixture_pairs(), 3)
    assert sorted(table.pair(0, p).caption for p in range(16)) == sorted(p.caption for p in fixture_pairs())

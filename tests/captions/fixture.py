"""The image-caption fixture (tests/fixtures/mgca_captions): real COCO captions of two COCO
images plus six captions written here (see its README), and a helper writing it as webdataset tar files."""

from __future__ import annotations

from pathlib import Path

from lmseg.captions.table import FileSample, read_caption_table
from lmseg.captions.webdataset import SkipLog
from lmseg.captions.write import write_tars

CAPTIONS_CSV = Path(__file__).resolve().parents[1] / "fixtures" / "mgca_captions" / "captions.csv"


def fixture_pairs() -> list[FileSample]:
    """The 16 pairs of the fixture table."""
    skips = SkipLog()
    pairs = read_caption_table(CAPTIONS_CSV, skips)
    assert len(pairs) == 16 and not skips.counts
    return pairs


def fixture_tars(folder: Path, per_tar: int = 6) -> list[Path]:
    """The fixture written as img2dataset-style webdataset tar files (3 files of up to 6 pairs)."""
    return write_tars(fixture_pairs(), folder, per_tar=per_tar)

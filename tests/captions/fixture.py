"""The image-caption fixture (tests/fixtures/mgca_captions): real COCO captions of two COCO
images plus six captions written here (see its README), and a helper writing it as shards."""

from __future__ import annotations

from pathlib import Path

from lmseg.captions.shards import SkipLog
from lmseg.captions.table import FileSample, read_caption_table
from lmseg.captions.write import write_shards

CAPTIONS_CSV = Path(__file__).resolve().parents[1] / "fixtures" / "mgca_captions" / "captions.csv"


def fixture_pairs() -> list[FileSample]:
    """The 16 pairs of the fixture table."""
    skips = SkipLog()
    pairs = read_caption_table(CAPTIONS_CSV, skips)
    assert len(pairs) == 16 and not skips.counts
    return pairs


def fixture_shards(folder: Path, per_shard: int = 6) -> list[Path]:
    """The fixture written as img2dataset-style webdataset shards (3 shards of up to 6 pairs)."""
    return write_shards(fixture_pairs(), folder, per_shard=per_shard)

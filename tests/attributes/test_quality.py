"""The table report: figures computed on the pandas DataFrame, and its command."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from lmseg.attributes.quality import has_colour_word, table_report
from lmseg.attributes.reader import attribute_frame, load_attribute_frame
from lmseg.attributes.store import rows_to_table, write_table
from pipelines.attribute_report import main
from tests.attributes.test_store import make_row


def rows_with(groups: list[tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]]) -> list:
    return [replace(make_row(i, f"class{i}"), colour=c, shape=s, texture=t) for i, (c, s, t) in enumerate(groups)]


def test_the_reader_returns_a_dataframe_with_tuples_of_phrases(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    write_table(rows_to_table(rows_with([(("red",), ("round",), ("wood",))])), path)
    frame = load_attribute_frame("pets", "ignored", path=path)
    assert isinstance(frame, pd.DataFrame) and list(frame["class_index"]) == [0]
    assert frame.loc[0, "colour"] == ("red",) and frame.loc[0, "method"] == "generate"


def test_figures_count_sets_common_phrases_and_colours_in_the_wrong_group() -> None:
    groups = [
        (("red", "blue"), ("round",), ("white", "wood")),
        (("blue", "red"), ("round", "flat"), ("dark wood",)),
        (("green",), ("tall",), ("rubber",)),
        (("red", "blue"), ("flat",), ("stone", "smooth")),
    ]
    report = table_report(attribute_frame(rows_to_table(rows_with(groups))))
    colour, shape, texture = report.groups
    assert (colour.distinct_sets, colour.top_set, colour.top_share) == (2, ("blue", "red"), 0.75)
    assert colour.common_phrases == (("blue", 0.75), ("red", 0.75)) and colour.colour_phrase_share is None
    assert shape.distinct_sets == 4 and shape.top_share == 0.25 and shape.common_phrases == ()
    assert shape.top_set == ("flat",)  # four sets tie: the first in sorted order, not the first seen
    assert shape.colour_phrase_share == 0.0
    assert texture.colour_phrase_share == pytest.approx(2 / 6)  # "white", "dark wood"
    assert report.classes == 4 and report.methods == ("generate",) and not report.meets_targets


def test_colour_words_are_whole_words() -> None:
    assert has_colour_word("dark wood") and has_colour_word("grey") and has_colour_word("red-brown")
    assert not has_colour_word("redwood") and not has_colour_word("rubber")


def test_the_command_prints_the_report_and_exits_by_the_targets(tmp_path: Path, capsys) -> None:
    varied = [((f"c{i}",), (f"s{i}",), (f"t{i}",)) for i in range(20)]
    good, bad = tmp_path / "good.parquet", tmp_path / "bad.parquet"
    write_table(rows_to_table(rows_with(varied)), good)
    write_table(rows_to_table(rows_with([(("red",), ("round",), ("red",))] * 1)), bad)
    assert main([str(good)]) == 0
    out = capsys.readouterr().out
    assert "20 classes" in out and "meets the targets" in out and "5.0% of classes" in out
    assert main([str(bad)]) == 1 and "misses the targets" in capsys.readouterr().out
    assert main([str(tmp_path / "none.parquet")]) == 2
    assert "error: attribute table" in capsys.readouterr().err

"""The truth set and the truth report: the bundled data, the figures, and bad input (exit 2, one line)."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path

import pytest

from lmseg.attributes.accuracy import (
    FIGURES,
    default_truth_path,
    figure_accuracy,
    load_truth,
    normalise_word,
    phrase_is_acceptable,
    truth_report,
)
from lmseg.attributes.lexicon import load_lexicon
from lmseg.attributes.reader import attribute_frame
from lmseg.attributes.store import rows_to_table, write_table
from lmseg.errors import LmsegError
from lmseg.vocab import get_vocabulary
from pipelines import attribute_report, gen_prompts
from tests.attributes.test_store import make_row

HEADER = "name,split,sources,colours,materials,surfaces,shapes\n"
SOURCES = ("ade150", "ade847", "cityscapes19", "coco_object80", "cocostuff171", "lvis1203", "pc59", "pc459", "voc20",
           "voc21")


def write_truth(path: Path, *lines: str, header: str = HEADER) -> Path:
    path.write_text("# a comment\n" + header + "".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def write_attribute_table(path: Path, classes: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]]) -> Path:
    rows = [replace(make_row(i, name), colour=c, shape=s, texture=t) for i, (name, (c, s, t)) in enumerate(classes.items())]
    write_table(rows_to_table(rows), path)
    return path


def test_the_bundled_truth_set_has_two_halves_of_real_class_names() -> None:
    truth = load_truth()
    names = [e.name for e in truth.entries]
    assert len(names) >= 200 and truth.source == str(default_truth_path())
    assert abs(len(truth.select("dev")) - len(truth.select("test"))) <= 1
    # the split is the documented one: the first half of the names ordered by sha256 is dev
    ranked = sorted(names, key=lambda n: hashlib.sha256(n.encode()).hexdigest())
    assert [e.name for e in truth.select("dev")] == [n for n in names if n in set(ranked[: (len(names) + 1) // 2])]
    primary = {v: set(get_vocabulary(v).names) for v in SOURCES}
    for entry in truth.entries:
        assert entry.sources and set(entry.sources) <= set(SOURCES), entry.name
        assert entry.sources == tuple(v for v in SOURCES if entry.name in primary[v]), entry.name
        assert any(words is not None for words in entry.acceptable.values()), entry.name


def test_every_bundled_truth_word_is_in_its_lexicon_or_a_named_extra() -> None:
    """The truth uses the word lists' spellings, so that a scored table can match it; a few
    true materials that no list holds (gold, slate, ...) are allowed and named here."""
    extra = {"materials": {"gold", "silver", "nickel", "bone", "slate", "hemp", "jute", "bronze", "copper"}}
    lexicon = {"colours": "colour", "materials": "material", "surfaces": "surface", "shapes": "shape"}
    for entry in load_truth().entries:
        for field, words in entry.acceptable.items():
            unknown = (words or frozenset()) - set(load_lexicon(lexicon[field])) - extra.get(field, set())
            assert not unknown, (entry.name, field, unknown)


def test_figures_count_kept_first_and_precision_with_word_forms() -> None:
    phrases = [("gray", "red"), ("blue",), ("white", "golden"), ("red",)]
    acceptable = [frozenset({"grey"}), frozenset({"green"}), frozenset({"gold"}), None]
    figure = figure_accuracy("colour", phrases, acceptable)
    assert (figure.judged, figure.kept, figure.first) == (3, 2 / 3, 1 / 3)
    assert figure.precision == pytest.approx(2 / 5) and figure.words == pytest.approx(5 / 3)
    assert normalise_word("Gray") == "grey" and phrase_is_acceptable("dark wooden", frozenset({"wood"}))
    assert not phrase_is_acceptable("redwood", frozenset({"red"}))


def test_the_report_matches_rows_by_class_name_and_judges_material_and_texture(tmp_path: Path) -> None:
    truth = load_truth(write_truth(
        tmp_path / "t.csv",
        "cat,dev,coco_object80,black white,fur,furry,-",
        "brick,test,ade847,red,clay,rough,rectangular",
    ))
    table = write_attribute_table(tmp_path / "t.parquet", {
        "dog": (("brown",), ("long",), ("fur",)),
        "cat": (("pink", "black"), ("round",), ("meat", "furry")),
        "brick": (("red",), ("rectangular",), ("rough", "stone")),
    })
    from lmseg.attributes.store import read_table

    frame = attribute_frame(read_table(table))
    report = truth_report(frame, truth)
    assert report.classes == 2 and [f.figure for f in report.figures] == list(FIGURES)
    colour, material, texture, shape = report.figures
    assert (colour.kept, colour.first) == (1.0, 0.5)
    assert (material.judged, material.kept) == (2, 0.0)  # 'furry' and 'rough' are surfaces, not materials
    assert (texture.kept, texture.first) == (1.0, 0.5)
    assert (shape.judged, shape.kept) == (1, 1.0)  # the cat's shape is not judged
    dev = truth_report(frame, truth, "dev")
    assert dev.classes == 1 and dev.figure("colour").first == 0.0


def test_the_command_prints_the_truth_figures_and_exits_by_all_targets(tmp_path: Path, capsys) -> None:
    truth = write_truth(tmp_path / "t.csv", "cat,dev,coco_object80,black,fur,-,-")
    varied = {f"class{i}": ((f"c{i}",), (f"s{i}",), (f"t{i}",)) for i in range(19)}  # meets the diversity targets
    good = write_attribute_table(tmp_path / "good.parquet", {"cat": (("black",), ("small",), ("fur",)), **varied})
    bad = write_attribute_table(tmp_path / "bad.parquet", {"cat": (("pink",), ("small",), ("meat",)), **varied})
    assert attribute_report.main([str(good), "--truth", str(truth)]) == 0
    out = capsys.readouterr().out
    assert "truth: 1 classes of both halves" in out and "meets the truth targets" in out
    assert "colour      1 judged; acceptable among kept 100.0%, first 100.0%" in out
    assert "shape    no class judged" in out
    assert attribute_report.main([str(bad), "--truth", str(truth), "--split", "dev"]) == 1
    assert "misses the truth targets" in capsys.readouterr().out
    assert attribute_report.main([str(good), "--truth", str(truth), "--split", "test"]) == 1  # no test classes: 0%


BAD_TRUTH = [
    (("cat,dev,x,black,fur,-,-",), "name,split,colours", "the header must be name,split,sources"),
    (("cat,dev,x,black,fur,-",), HEADER, "line 3: expected 7 comma-separated fields"),
    (("cat,train,x,black,fur,-,-",), HEADER, "line 3: split must be one of dev, test (got 'train')"),
    (("cat,dev,x,,fur,-,-",), HEADER, "colours of 'cat' must be lower-case words separated by spaces"),
    (("cat,dev,x,Black,fur,-,-",), HEADER, "colours of 'cat' must be lower-case words"),
    (("cat,dev,x,black,fur,-,-", "cat,test,x,white,fur,-,-"), HEADER, "line 4: class 'cat' is listed twice"),
    ((",dev,x,black,fur,-,-",), HEADER, "line 3: the class name is empty"),
    ((), HEADER, "has a header but no classes"),
]


@pytest.mark.parametrize(("lines", "header", "message"), BAD_TRUTH)
def test_a_malformed_truth_file_is_one_error_line_with_exit_2(tmp_path: Path, capsys, lines, header, message) -> None:
    truth = write_truth(tmp_path / "t.csv", *lines, header=header if header.endswith("\n") else header + "\n")
    table = write_attribute_table(tmp_path / "t.parquet", {"cat": (("black",), ("small",), ("fur",))})
    assert attribute_report.main([str(table), "--truth", str(truth)]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and message in captured.err
    assert captured.err.startswith("error: ") and captured.err.count("\n") == 1
    with pytest.raises(LmsegError, match="truth file"):
        load_truth(truth)


def test_a_missing_truth_file_and_classes_not_in_the_table_are_one_error_line(tmp_path: Path, capsys) -> None:
    table = write_attribute_table(tmp_path / "t.parquet", {"cat": (("black",), ("small",), ("fur",))})
    assert attribute_report.main([str(table), "--truth", str(tmp_path / "none.csv")]) == 2
    assert capsys.readouterr().err == f"error: truth file {tmp_path / 'none.csv'} does not exist\n"
    truth = write_truth(tmp_path / "t.csv", "cat,dev,x,black,fur,-,-", "zebra,test,x,black,fur,-,-")
    assert attribute_report.main([str(table), "--truth", str(truth)]) == 2
    err = capsys.readouterr().err
    assert err == f"error: the truth set names 1 class(es) that are not in table {table}: 'zebra'\n"
    assert attribute_report.main([str(table), "--truth", str(truth), "--split", "dev"]) == 1  # only cat is judged
    assert "truth: 1 classes of the dev half" in capsys.readouterr().out  # (one class: no diversity, exit 1)
    assert attribute_report.main([str(table), "--split", "dev"]) == 2
    assert "error: --split applies to --truth" in capsys.readouterr().err


def test_gen_prompts_checks_the_truth_file_before_any_model_loads(tmp_path: Path, capsys, cache: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    def no_model(args):  # pragma: no cover - reached only if the check came too late
        raise AssertionError("a model was loaded before the truth file was checked")

    monkeypatch.setattr(gen_prompts, "build_backend", no_model)
    truth = write_truth(tmp_path / "t.csv", "cat,dev,x,black,fur,-,-", "zebra,test,x,black,fur,-,-")
    assert gen_prompts.main(["--classes", "cat,dog", "--truth", str(truth)]) == 2
    err = capsys.readouterr().err
    assert err.endswith("error: the truth set names 1 class(es) that are not in vocabulary "
                        f"'{gen_prompts.vocabulary_from_args(gen_prompts.build_parser().parse_args(['--classes', 'cat,dog'])).name}': 'zebra'\n")
    malformed = write_truth(tmp_path / "m.csv", "cat,dev,x,black,fur", header=HEADER)
    assert gen_prompts.main(["--classes", "cat,dog", "--truth", str(malformed)]) == 2
    assert "expected 7 comma-separated fields" in capsys.readouterr().err
    assert gen_prompts.main(["--dataset", "ade847", "--truth"]) == 2  # the bundled set has classes ade847 lacks
    assert "that are not in vocabulary 'ade847'" in capsys.readouterr().err

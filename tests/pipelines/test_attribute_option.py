"""``--attributes TABLE`` of segment, evaluate and demo: every method takes the table, the run
records it, and a bad table is one ``error:`` line with exit status 2 before any model loads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("torch", reason="segment and evaluate run in the vision environment")

from lmseg.vocab import get_vocabulary  # noqa: E402
from pipelines import demo  # noqa: E402
from pipelines.evaluate import main as evaluate_main  # noqa: E402
from pipelines.segment import main as segment_main  # noqa: E402
from tests.attribute_tables import write_attribute_table  # noqa: E402
from tests.data.samples import ADE150, images  # noqa: E402

METHODS = ("lmseg_tiny", "mrovseg_tiny", "mgca_tiny", "trident_tiny")
ADE = get_vocabulary("ade150")


@pytest.fixture
def ade_table(tmp_path: Path) -> Path:
    """Rows for ADE-150's wall, building and sky."""
    return write_attribute_table(tmp_path / "ade150.parquet", {i: ADE.classes[i].name for i in (0, 1, 2)})


def _bad_tables(tmp_path: Path) -> list[tuple[list[str], str]]:
    corrupt = tmp_path / "corrupt.parquet"
    corrupt.write_text("not parquet")
    other = write_attribute_table(tmp_path / "pets.parquet", {0: "cat"})
    good = write_attribute_table(tmp_path / "good.parquet", {0: "wall"})
    return [
        (["--attributes", str(tmp_path / "missing.parquet")], "does not exist"),
        (["--attributes", str(corrupt)], "is corrupt or not a Parquet file"),
        (["--attributes", str(other)], "row 0 is for 'cat' but class 0 of 'ade150' is 'wall'"),
        (["--set", "attribute_table=3"], "attribute_table must be the path of a stage-1 attribute table"),
        (["--attributes", str(good), "--set", f"attribute_table={good}"], "give the attribute table once"),
    ]


def _one_error_line(err: str, message: str) -> None:
    assert err.startswith("error: ") and message in err and err.count("\n") == 1 and "Traceback" not in err


def test_bad_tables_exit_2_before_any_model_loads(ade_root: Path, tmp_path: Path, capsys) -> None:
    # trident_vitb16 is given no weights: a command that built it first would complain about those
    for extra, message in _bad_tables(tmp_path):
        code = segment_main([str(images(ADE150)[0]), "--model", "trident_vitb16", "--dataset", "ade150",
                             "--output", str(tmp_path / "s"), *extra])
        assert code == 2
        _one_error_line(capsys.readouterr().err, message)
        code = evaluate_main(["--model", "trident_vitb16", "--dataset", "ade150", "--data-root", str(ade_root),
                              "--output", str(tmp_path / "e"), *extra])
        assert code == 2
        _one_error_line(capsys.readouterr().err, message)
    assert not (tmp_path / "s").exists() and not (tmp_path / "e").exists()
    assert demo.main(["--model", "trident_vitb16", "--attributes", str(tmp_path / "missing.parquet")]) == 2
    _one_error_line(capsys.readouterr().err, "does not exist")


@pytest.mark.parametrize("name", METHODS)
def test_every_method_takes_the_table_in_segment_and_evaluate(name: str, ade_root: Path, ade_table: Path,
                                                              tmp_path: Path) -> None:
    """The ADE-150 table also fits a typed list of the same classes (matched by class name)."""
    image = images(ADE150)[0]
    for table in (None, ade_table):
        out = tmp_path / ("with" if table else "without")
        extra = ["--attributes", str(table)] if table else []
        assert segment_main([str(image), "--model", name, "--classes", "wall,building,sky", "--scores",
                             "--output", str(out / "s"), "--workers", "0", *extra]) == 0
        assert evaluate_main(["--model", name, "--dataset", "ade150", "--data-root", str(ade_root), "--limit", "1",
                              "--workers", "0", "--output", str(out / "e"), *extra]) == 0
    protocol = json.loads((tmp_path / "with" / "s" / "protocol.json").read_text())
    assert protocol["weights"]["files"]["attribute_table"]["path"] == str(ade_table.resolve())
    report = json.loads((tmp_path / "with" / "e" / "report.json").read_text())
    assert report["settings"]["model_options"]["attribute_table"] == str(ade_table.resolve())
    assert "sha256" in report["settings"]["weights"]["attribute_table"]
    wall = Path(f"{image.stem}_scores") / "000_wall.png"
    assert (tmp_path / "with" / "s" / wall).read_bytes() != (tmp_path / "without" / "s" / wall).read_bytes()

"""A Trident preset queries the benchmark's vocabulary with the published class file, exactly as
the public code reads it; a user's vocabulary keeps its own names; reports record which."""

from __future__ import annotations

import json
from importlib import resources

import numpy as np

from lmseg.data import get_benchmark
from lmseg.inference.protocol import protocol_record
from lmseg.registry import create_segmenter
from lmseg.vocab import get_vocabulary
from pipelines.evaluate import main as evaluate_main
from tests.data.samples import build_voc
from tests.models.trident.conftest import preset_config


def official_queries(file: str) -> list[str]:
    """Trident's get_cls_idx: readlines, split('; '), drop the newline."""
    lines = (resources.files("lmseg.vocab") / "data" / "trident" / file).read_text().splitlines(keepends=True)
    return [name.replace("\n", "").strip() for line in lines for name in line.split("; ")]


def test_presets_send_the_published_queries_and_user_lists_their_own() -> None:
    assert preset_config("voc21").class_list == "trident/voc21"  # what benchmark= selects
    background = preset_config("voc21").background_names
    seg = create_segmenter("trident_tiny", config={"class_list": "trident/voc21", "background_names": background})
    _, text = seg.text_embeddings(get_vocabulary("voc21"))
    assert list(text.queries) == official_queries("cls_voc21.txt") and len(text.queries) == 26 + 20
    assert "ship" in text.queries and "boat" not in text.queries
    _, user = seg.text_embeddings(["background", "boat", "dining table"])
    assert user.queries == (*background, "boat", "dining table")
    city = create_segmenter("trident_tiny", config={"class_list": "trident/cityscapes19"})
    _, text = city.text_embeddings(get_benchmark("cityscapes19").classes())
    assert list(text.queries) == official_queries("cls_city_scapes.txt")


def test_records_say_which_queries_were_sent() -> None:
    seg = create_segmenter("trident_tiny", config={"class_list": "trident/voc20"})
    published = protocol_record(seg, get_vocabulary("voc20"))
    own = protocol_record(seg, ["cat", "dog"])
    assert published["method"]["queries"]["class_list"]["id"] == "trident/voc20"
    assert published["method"]["queries"]["class_list"]["url"].endswith("/configs/cls_voc20.txt")
    assert own["method"]["queries"]["class_list"] is None
    assert published["method"]["queries"]["sha256"] != protocol_record(
        create_segmenter("trident_tiny"), get_vocabulary("voc20"))["method"]["queries"]["sha256"]
    json.dumps(published)  # JSON-ready as it is


def test_evaluate_report_records_the_protocol(tmp_path) -> None:
    root = tmp_path / "data"
    build_voc(root)
    out = tmp_path / "out"
    code = evaluate_main(["--model", "trident_tiny", "--set", "config.class_list=trident/voc21", "--dataset", "voc21",
                          "--data-root", str(root), "--limit", "1", "--workers", "0", "--output", str(out)])
    assert code == 0
    protocol = json.loads((out / "report.json").read_text())["settings"]["protocol"]
    assert protocol["vocabulary"]["name"] == "voc21"
    assert protocol["method"]["queries"]["class_list"]["id"] == "trident/voc21"
    assert protocol["method"]["resize"]["library"].startswith("opencv ")
    assert set(protocol["weights"]["parameters"]) == {"clip", "dino", "sam"}
    assert protocol["libraries"]["opencv-python-headless"] and protocol["libraries"]["torch"]
    assert np.isfinite(json.loads((out / "report.json").read_text())["scores"]["pixel_accuracy"])

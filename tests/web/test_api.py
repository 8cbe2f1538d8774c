"""Programs call the page: Gradio's client and the raw HTTP recipe of docs/web.md, as written."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from lmseg.data.image_io import read_label_file
from lmseg.web.samples import samples_dir

STREET = samples_dir() / "ade_val_00000003_street.jpg"
WEB_DOC = Path(__file__).resolve().parents[2] / "docs" / "web.md"
DOC_URL_LINE = "url=http://127.0.0.1:7860\n"


def test_client_segments_and_gets_errors(demo_server: str) -> None:
    from gradio_client import Client, handle_file

    client = Client(demo_server, verbose=False)
    label_png, overlay_png, table = client.predict(
        handle_file(str(STREET)), "road, sky, tree", "", api_name="/segment"
    )
    assert [row["class"] for row in table["classes"]] == ["road", "sky", "tree"]
    label = read_label_file(label_png)
    assert label.shape == (300, 400) and label.max() < 3
    shares = np.bincount(label.ravel(), minlength=3) / label.size
    np.testing.assert_allclose(shares, [row["share"] for row in table["classes"]])
    with pytest.raises(Exception, match="type at least one class"):
        client.predict(handle_file(str(STREET)), "  ", "", api_name="/segment")
    with pytest.raises(Exception, match="both classes and the vocabulary 'voc21' were given"):
        client.predict(handle_file(str(STREET)), "road, sky", "voc21", api_name="/segment")
    _, _, table = client.predict(handle_file(str(STREET)), "", "voc21", api_name="/segment")
    assert len(table["classes"]) == 21


def test_the_raw_http_recipe_of_the_docs_runs_as_written(demo_server: str, tmp_path: Path) -> None:
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    blocks = re.findall(r"```bash\n(.*?)```", WEB_DOC.read_text(), re.S)
    recipe = next(block for block in blocks if "gradio_api/upload" in block)
    assert recipe.startswith(DOC_URL_LINE)  # the page's default address; this test's page listens elsewhere
    shutil.copy(STREET, tmp_path / "photo.jpg")
    run = subprocess.run(["bash", "-euo", "pipefail", "-c", f"url={demo_server}\n" + recipe[len(DOC_URL_LINE):]],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    event, data = run.stdout.strip().splitlines()[:2]
    assert event == "event: complete", run.stdout
    label, overlay, table = json.loads(data.removeprefix("data: "))
    assert [row["class"] for row in table["classes"]] == ["cat", "dog"]
    assert label["orig_name"] == "segmentation_label.png" and overlay["orig_name"] == "segmentation_overlay.png"


def test_the_vocabulary_menu_offers_only_what_the_page_accepts(demo_server: str) -> None:
    with urllib.request.urlopen(f"{demo_server}/config", timeout=30) as answer:
        config = json.load(answer)
    menu = next(c for c in config["components"] if c.get("props", {}).get("elem_id") == "vocabulary")
    values = [choice[1] for choice in menu["props"]["choices"]]
    assert "ade150" in values and "voc21" in values
    assert "ade847" not in values and "lvis1203" not in values and "imagenet21k" not in values

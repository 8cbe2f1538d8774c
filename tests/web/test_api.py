"""Programs call the page through Gradio's client (the example of docs/web.md)."""

from __future__ import annotations

import numpy as np
import pytest

from lmseg.data.image_io import read_label_file
from lmseg.web.samples import samples_dir

STREET = samples_dir() / "ade_val_00000003_street.jpg"


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
    _, _, table = client.predict(handle_file(str(STREET)), "", "voc21", api_name="/segment")
    assert len(table["classes"]) == 21

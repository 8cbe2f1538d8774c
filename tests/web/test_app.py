"""The page's event handlers without a browser: what a crafted event gets."""

from __future__ import annotations

import gradio as gr
import pytest

from lmseg.web.app import TYPED, _on_sample
from lmseg.web.samples import SAMPLES, samples_dir


@pytest.mark.parametrize("index", [len(SAMPLES), -1, 10**9, "0", None, [0, 1], True])
def test_a_crafted_sample_index_is_answered_in_the_status_line(index: object) -> None:
    upload, classes, vocabulary, status = _on_sample(gr.SelectData(None, {"index": index, "value": None}))
    assert upload == classes == vocabulary == gr.update()  # nothing on the page changes but the status
    assert 'class="lmseg-status-error"' in status and f"error: there is no sample {index!r}" in status.replace(
        "&#x27;", "'")


def test_a_sample_fills_in_its_image_and_classes_and_selects_the_typed_classes() -> None:
    upload, classes, vocabulary, status = _on_sample(gr.SelectData(None, {"index": 1, "value": None}))
    assert upload == str(samples_dir() / SAMPLES[1].file) and classes == SAMPLES[1].classes
    assert vocabulary == TYPED and status == gr.update()

"""``benchmark=`` of MROVSeg and MGCA: the benchmark's own vocabulary is prompted with the
published names (CAT-Seg's for MROVSeg, TCL's for MGCA), which is the same as segmenting with a
vocabulary spelled that way; other vocabularies are untouched."""

from __future__ import annotations

import numpy as np
import pytest

import lmseg
from lmseg.errors import LmsegError
from lmseg.vocab import get_vocabulary, vocabulary_from_names
from lmseg.vocab.class_lists import load_class_list

pytest.importorskip("open_clip", reason="needs the vision environment (open_clip)")

IMAGE = np.random.default_rng(0).integers(0, 256, (72, 96, 3), dtype=np.uint8)


@pytest.mark.parametrize(("name", "benchmark", "list_id"), [
    ("mrovseg_tiny", "ade150", "catseg/ade150"), ("mgca_tiny", "pc59", "tcl/pc59"),
])
def test_benchmark_names_are_the_published_ones(name: str, benchmark: str, list_id: str, tmp_path,
                                                monkeypatch) -> None:
    monkeypatch.setenv("LMSEG_CACHE_DIR", str(tmp_path))
    builtin = get_vocabulary(benchmark)
    spelled = vocabulary_from_names([", ".join(c.names) for c in load_class_list(list_id).classes], name=benchmark)
    assert [c.names for c in spelled.classes] != [c.names for c in builtin.classes]
    preset = lmseg.create_segmenter(name, benchmark=benchmark)
    plain = lmseg.create_segmenter(name)
    assert preset.settings()["inference"]["class_list"] == list_id
    got = preset.logits(IMAGE, builtin)
    np.testing.assert_array_equal(got, plain.logits(IMAGE, spelled))
    assert not np.array_equal(got, plain.logits(IMAGE, builtin))
    user = ["wall", "table", "cat"]
    np.testing.assert_array_equal(preset.logits(IMAGE, user), plain.logits(IMAGE, user))


def test_unknown_benchmarks_fail_before_loading() -> None:
    with pytest.raises(LmsegError, match="no catseg class list for benchmark 'cityscapes19'"):
        lmseg.create_segmenter("mrovseg_vitb16", benchmark="cityscapes19", checkpoint="/nonexistent.pt")
    with pytest.raises(LmsegError, match="no MGCA preset for voc21"):
        lmseg.create_segmenter("mgca_vitb16", benchmark="voc21", checkpoint="/nonexistent.pt")

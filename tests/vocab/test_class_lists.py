"""The shipped published class lists: byte-identical files, counts and order as in their sources,
the differences from the built-in vocabularies that the issue names, and every preset resolving."""

from __future__ import annotations

import hashlib
import json
from importlib import resources

import pytest

from lmseg.errors import LmsegError
from lmseg.models.presets import published_queries
from lmseg.vocab import get_vocabulary, vocabulary_from_names
from lmseg.vocab.class_lists import class_list_sources, get_class_list_source, load_class_list

DATA = resources.files("lmseg.vocab") / "data"

#: Class counts of the source files (Trident's configs/cls_*.txt, CAT-Seg's datasets/*.json).
COUNTS = {
    "trident/voc21": 21, "trident/voc20": 20, "trident/pc60": 60, "trident/pc59": 59, "trident/coco_object": 81,
    "trident/cocostuff171": 171, "trident/cityscapes19": 19, "trident/ade150": 150, "trident/ade847": 847,
    "trident/pc459": 459, "catseg/ade150": 150, "catseg/ade847": 847, "catseg/cocostuff171": 171,
    "catseg/pc459": 459, "catseg/pc59": 59, "catseg/voc20": 20, "catseg/voc20b": 59,
    "tcl/voc21": 21, "tcl/voc20": 20, "tcl/pc60": 60, "tcl/pc59": 59, "tcl/coco_object": 81,
    "tcl/cocostuff171": 171, "tcl/cityscapes19": 19, "tcl/ade150": 150,
}


def source_queries(list_id: str) -> list[list[str]]:
    """The queries as the source code reads its file: Trident's get_cls_idx, CAT-Seg's json + split(', '),
    TCL's mmseg CLASSES tuple (one name per line here)."""
    source = get_class_list_source(list_id)
    text = (DATA / source.file).read_text(encoding="utf-8")
    if source.format == "trident":
        return [line.replace("\n", "").split("; ") for line in text.splitlines(keepends=True)]
    if source.format == "lines":
        return [[line] for line in text.split("\n")[:-1]]
    return [name.split(", ") for name in json.loads(text)]


def test_manifest_lists_every_file_with_its_sha256_and_source() -> None:
    sources = class_list_sources()
    assert set(sources) == set(COUNTS)
    for source in sources.values():
        assert hashlib.sha256((DATA / source.file).read_bytes()).hexdigest() == source.sha256
        assert source.url.startswith("https://github.com/") and len(source.commit) == 40
        assert source.licence in ("Apache-2.0", "MIT") and (DATA / source.file.split("/")[0] / "LICENSE").is_file()


@pytest.mark.parametrize("list_id", sorted(COUNTS))
def test_counts_and_order_match_the_source(list_id) -> None:
    vocab = load_class_list(list_id)
    assert len(vocab) == COUNTS[list_id] == get_class_list_source(list_id).num_classes
    expected = [[name.strip() for name in names] for names in source_queries(list_id)]
    assert [list(entry.names) for entry in vocab.classes] == expected


def test_stripped_names_tokenize_as_the_originals() -> None:
    """Three source names carry a trailing space; CLIP's tokenizer ignores it."""
    tokenizer = pytest.importorskip("open_clip.tokenizer", reason="needs open_clip (vision environment)").tokenize
    raw = [n for list_id in COUNTS for names in source_queries(list_id) for n in names if n != n.strip()]
    assert sorted(raw) == ["bed ", "bed ", "c p u ", "wood "]
    for name in raw:
        for template in ("a photo of a {}.", "a bad photo of the {}."):
            assert (tokenizer(template.format(name)) == tokenizer(template.format(name.strip()))).all()


def test_the_published_names_differ_where_the_issue_says() -> None:
    voc = load_class_list("trident/voc21")
    builtin = get_vocabulary("voc21")
    changed = {i: (voc.classes[i].names, builtin.classes[i].name) for i in range(21)
               if voc.classes[i].names != builtin.classes[i].names}
    assert changed[4] == (("ship",), "boat") and changed[11] == (("table",), "diningtable")
    assert changed[0][0][:3] == ("sky", "wall", "tree") and len(changed[0][0]) == 26 and set(changed) == {0, 4, 11}
    city = load_class_list("trident/cityscapes19")
    assert city.names[6:8] == ["trafficlight", "trafficsign"]
    assert get_vocabulary("cityscapes19").names[6:8] == ["traffic light", "traffic sign"]
    assert load_class_list("trident/ade847").classes[1].names == ("building, edifice",)  # one query, comma kept


@pytest.mark.parametrize(("list_id", "builtin"), [
    ("catseg/ade847", "ade847"), ("catseg/pc59", "pc59"), ("catseg/voc20", "voc20"),
    ("catseg/cocostuff171", "cocostuff171"), ("trident/pc459", "pc459"),
])
def test_lists_that_agree_with_the_builtin_vocabularies(list_id, builtin) -> None:
    assert [c.names for c in load_class_list(list_id).classes] == [c.names for c in get_vocabulary(builtin).classes]


def test_every_trident_preset_resolves_and_applies_to_its_benchmark_only() -> None:
    from lmseg.data import get_benchmark
    from lmseg.models.presets import TRIDENT_PRESETS

    for name, cfg in TRIDENT_PRESETS.items():
        source = get_class_list_source(cfg["class_list"])
        assert source.benchmark == name and len(load_class_list(cfg["class_list"])) == source.num_classes
        if name == "pc60":  # no PASCAL Context 60 reader here: nothing to apply it to
            continue
        classes = get_benchmark(name).classes()
        queries = published_queries(cfg["class_list"], classes)
        assert queries is not None and len(queries) == len(classes)
        if cfg.get("background_names"):  # the preset's background words are the file's first line
            assert queries[0] == cfg["background_names"]
    user = vocabulary_from_names(get_vocabulary("voc21").names[:-1] + ["monitor"])
    assert published_queries("trident/voc21", user) is None
    assert published_queries("trident/voc21", get_vocabulary("voc20")) is None


def test_tcl_names_differ_from_the_builtins_only_where_mmseg_does() -> None:
    pc59 = load_class_list("tcl/pc59")
    builtin = get_vocabulary("pc59")
    assert [i for i in range(59) if pc59.classes[i].names != builtin.classes[i].names] == [49]
    assert pc59.classes[49].names == ("table",) and builtin.classes[49].name == "diningtable"
    ade = load_class_list("tcl/ade150")
    assert ade.names == get_vocabulary("ade150").names  # primary names; TCL sends no synonyms
    assert all(len(c.names) == 1 for c in ade.classes) and any(len(c.names) > 1 for c in get_vocabulary("ade150").classes)
    for benchmark in ("voc20", "cocostuff171", "cityscapes19"):
        assert [c.names for c in load_class_list(f"tcl/{benchmark}").classes] == \
            [c.names for c in get_vocabulary(benchmark).classes]
    assert load_class_list("tcl/voc21").names[0] == "background"  # in the list, never queried by TCL


def test_every_lmseg_mrovseg_and_mgca_preset_resolves() -> None:
    from lmseg.models.presets import BACKGROUND_THRESHOLDED, catseg_inference, tcl_inference

    for benchmark in ("ade150", "ade847", "pc59", "pc459", "voc20", "cocostuff171"):
        list_id = catseg_inference(benchmark)["class_list"]
        assert published_queries(list_id, get_vocabulary(benchmark)) is not None
    for benchmark in ("voc20", "pc59", "cocostuff171", "cityscapes19", "ade150"):
        list_id = tcl_inference(benchmark)["class_list"]
        assert published_queries(list_id, get_vocabulary(benchmark)) is not None
    for benchmark in BACKGROUND_THRESHOLDED:
        with pytest.raises(LmsegError, match=f"no MGCA preset for {benchmark}: TCL does not query"):
            tcl_inference(benchmark)
    with pytest.raises(LmsegError, match="no catseg class list for benchmark 'cityscapes19'; known: ade150, ade847"):
        catseg_inference("cityscapes19")


def test_unknown_or_changed_lists_are_refused(monkeypatch) -> None:
    import dataclasses

    import lmseg.vocab.class_lists as class_lists

    with pytest.raises(LmsegError, match="unknown class list 'trident/nope'; known: trident/voc21"):
        load_class_list("trident/nope")
    changed = dataclasses.replace(get_class_list_source("trident/voc20"), sha256="0" * 64)
    monkeypatch.setattr(class_lists, "get_class_list_source", lambda list_id: changed)
    with pytest.raises(LmsegError, match="cls_voc20.txt has sha256 6b9a85ff.*it was changed"):
        load_class_list.__wrapped__("trident/voc20")

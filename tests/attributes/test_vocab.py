"""Vocabularies: built-in lists, user files, command-line lists, and their errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from lmseg.errors import LmsegError
from lmseg.vocab import builtin_vocabularies, get_vocabulary, load_vocabulary_file, parse_class_list

EXPECTED_SIZES = {
    "ade150": 150, "ade847": 847, "pc59": 59, "pc459": 459, "voc20": 20, "voc21": 21,
    "cocostuff171": 171, "coco_object80": 80, "cityscapes19": 19, "camvid11": 11, "lvis1203": 1203, "imagenet21k": 21843,
}


def test_every_builtin_vocabulary_loads_with_its_benchmark_size() -> None:
    assert set(builtin_vocabularies()) == set(EXPECTED_SIZES)
    for name, size in EXPECTED_SIZES.items():
        vocab = get_vocabulary(name)
        assert vocab.name == name
        assert len(vocab) == size
        assert all(c.name and c.name == c.name.strip() for c in vocab.classes)


def test_builtin_order_and_synonyms_follow_the_benchmarks() -> None:
    ade847 = get_vocabulary("ade847")
    assert ade847.classes[1].names == ("building", "edifice")
    # Primary names repeat in A-847; the synonyms tell the senses apart.
    bags = [c.names for c in ade847.classes if c.name == "bag"]
    assert len(bags) == 3 and len(set(bags)) == 3
    ade150 = get_vocabulary("ade150")
    assert ade150.classes[8].names == ("windowpane", "window")
    assert get_vocabulary("voc21").names[0] == "background"
    assert get_vocabulary("pc459").classes[2].name == "air conditioner"
    assert get_vocabulary("cityscapes19").names[:3] == ["road", "sidewalk", "building"]


def test_unknown_dataset_lists_the_known_ones() -> None:
    with pytest.raises(LmsegError, match="unknown dataset 'ade151'.*ade150, ade847"):
        get_vocabulary("ade151")


def test_vocabulary_file_with_synonyms_comments_and_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "My Pets.txt"
    path.write_text("# my classes\ncat, kitty\n\n  dog ; puppy\nsofa\n", encoding="utf-8")
    vocab = load_vocabulary_file(path)
    assert vocab.name == "my-pets"
    assert [c.names for c in vocab.classes] == [("cat", "kitty"), ("dog", "puppy"), ("sofa",)]


@pytest.mark.parametrize("text", ["", "\n\n# only a comment\n", " , ;\n"])
def test_empty_vocabulary_file_is_an_error(tmp_path: Path, text: str) -> None:
    path = tmp_path / "v.txt"
    path.write_text(text)
    with pytest.raises(LmsegError, match="empty|no class name"):
        load_vocabulary_file(path)


def test_duplicate_classes_are_reported_with_their_lines(tmp_path: Path) -> None:
    path = tmp_path / "v.txt"
    path.write_text("cat\ndog\nCat\nbird\ndog\n")
    with pytest.raises(LmsegError, match=r"'Cat' \(lines 1 and 3\).*'dog' \(lines 2 and 5\)"):
        load_vocabulary_file(path)


def test_a_synonym_under_two_classes_is_refused_with_its_lines(tmp_path: Path) -> None:
    path = tmp_path / "v.txt"
    path.write_text("sofa;couch\ncat\n\ncouch\n")
    with pytest.raises(LmsegError, match=r"names listed under two classes: 'couch' \(lines 1 and 4\)"):
        load_vocabulary_file(path)
    with pytest.raises(LmsegError, match=r"--classes: names listed under two classes: 'couch' \(entries 1 and 2\)"):
        parse_class_list("sofa;couch,couch")
    # the built-in benchmarks keep their official names, which do repeat across classes
    assert [i for i, c in enumerate(get_vocabulary("ade150").classes) if "ground" in c.names] == [13, 94]


def test_a_byte_order_mark_is_not_part_of_the_first_class(tmp_path: Path) -> None:
    path = tmp_path / "v.txt"
    path.write_bytes("\ufeffcat\ndog\n".encode("utf-8"))  # as Windows editors save UTF-8
    assert load_vocabulary_file(path).names == ["cat", "dog"]


def test_blank_entries_of_a_class_list_are_ignored_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("WARNING", logger="lmseg.vocab"):
        vocab = parse_class_list("cat, ,dog,")
    assert vocab.names == ["cat", "dog"]
    assert "--classes: blank entries ignored: 2, 4" in caplog.text


def test_missing_or_unreadable_vocabulary_file(tmp_path: Path) -> None:
    with pytest.raises(LmsegError, match="does not exist"):
        load_vocabulary_file(tmp_path / "nope.txt")
    binary = tmp_path / "bin.txt"
    binary.write_bytes(b"\xff\xfe\x00cat")
    with pytest.raises(LmsegError, match="cannot read"):
        load_vocabulary_file(binary)


def test_class_list_from_the_command_line() -> None:
    vocab = parse_class_list("cat, dog,sofa;couch")
    assert [c.names for c in vocab.classes] == [("cat",), ("dog",), ("sofa", "couch")]
    assert vocab.name.startswith("custom-")
    assert parse_class_list("cat,dog,sofa;couch").name == vocab.name  # stable
    assert parse_class_list("cat,dog").name != vocab.name  # different lists never share a cache
    assert parse_class_list("cat", name="Pets").name == "pets"
    with pytest.raises(LmsegError, match="empty"):
        parse_class_list(" , ,")
    with pytest.raises(LmsegError, match="more than once"):
        parse_class_list("cat,dog,cat")

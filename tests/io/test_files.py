"""lmseg.io.files.read_text_file: the text, or one error naming the file and what it is."""

from __future__ import annotations

import pytest

from lmseg.errors import LmsegError
from lmseg.io.files import read_text_file


def test_reads_the_text_and_drops_a_byte_order_mark_on_request(tmp_path) -> None:
    path = tmp_path / "v.txt"
    path.write_bytes(b"\xef\xbb\xbfcat\ndog\n")
    assert read_text_file(path, what="vocabulary file", encoding="utf-8-sig") == "cat\ndog\n"
    assert read_text_file(path, what="vocabulary file") == "\ufeffcat\ndog\n"


def test_missing_folder_and_bad_bytes_are_one_error_each(tmp_path) -> None:
    missing = tmp_path / "none.txt"
    with pytest.raises(LmsegError, match=f"^truth file {missing} does not exist$"):
        read_text_file(missing, what="truth file")
    with pytest.raises(LmsegError, match=f"^cannot read instruction {tmp_path}: .*Is a directory"):
        read_text_file(tmp_path, what="instruction")
    latin = tmp_path / "latin.txt"
    latin.write_bytes("caf\xe9\n".encode("latin-1"))
    with pytest.raises(LmsegError, match=f"^cannot read truth file {latin}: 'utf-8' codec can't decode byte 0xe9"):
        read_text_file(latin, what="truth file")

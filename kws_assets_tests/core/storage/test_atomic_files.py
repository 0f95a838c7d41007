"""Atomic local writes: whole content or nothing, no temporary file left behind."""

from __future__ import annotations

import pytest

from kws_assets.core.storage.atomic_files import copy_file_atomic, write_file_atomic


def test_writes_bytes_and_text_and_replaces_whole_files(tmp_path) -> None:
    target = write_file_atomic(tmp_path / "a" / "b" / "card.md", "héllo")
    assert target.read_bytes() == "héllo".encode()
    write_file_atomic(target, b"\x00\x01")
    assert target.read_bytes() == b"\x00\x01"
    assert sorted(p.name for p in target.parent.iterdir()) == ["card.md"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path) -> None:
    target = write_file_atomic(tmp_path / "x.bin", b"old")
    with pytest.raises(TypeError):
        write_file_atomic(target, 12345)  # not bytes: fails while writing the temporary
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["x.bin"]


def test_copy_is_atomic_and_complete(tmp_path) -> None:
    source = tmp_path / "src.bin"
    source.write_bytes(bytes(range(256)) * 10000)
    copied = copy_file_atomic(source, tmp_path / "out" / "dst.bin")
    assert copied.read_bytes() == source.read_bytes()
    with pytest.raises(FileNotFoundError):
        copy_file_atomic(tmp_path / "missing", copied)
    assert copied.read_bytes() == source.read_bytes()
    assert [p.name for p in copied.parent.iterdir()] == ["dst.bin"]

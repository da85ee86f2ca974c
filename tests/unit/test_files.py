"""Crash-safe writes and strict JSON helpers."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from continuity import files, strict_json


def test_write_atomic_replaces_whole_and_sets_the_mode(tmp_path: Path) -> None:
    target = tmp_path / "state.json"
    target.write_bytes(b"old")
    files.write_atomic(target, b"new", 0o600)
    assert target.read_bytes() == b"new"
    assert target.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]  # no temp file left


def test_write_atomic_failure_keeps_the_old_content_and_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "state.json"
    target.write_bytes(b"old")
    with pytest.raises(TypeError):
        files.write_atomic(target, "not bytes", 0o600)  # type: ignore[arg-type]
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]


def test_create_exclusive_never_overwrites_nor_follows_links(tmp_path: Path) -> None:
    existing = tmp_path / "slot"
    existing.write_bytes(b"keep me")
    with pytest.raises(FileExistsError):
        files.create_exclusive(existing, b"other")
    assert existing.read_bytes() == b"keep me"
    link = tmp_path / "link"
    os.symlink(tmp_path / "elsewhere", link)
    with pytest.raises(FileExistsError):
        files.create_exclusive(link, b"other")
    assert not (tmp_path / "elsewhere").exists()


@pytest.mark.parametrize("text", ['{"a": 1, "a": 2}', '{"x": {"b": 1, "b": 1}}', '{"n": NaN}', '[Infinity]'])
def test_strict_json_refuses_ambiguous_documents(text: str) -> None:
    with pytest.raises(ValueError, match="duplicate key|not allowed"):
        json.loads(
            text,
            object_pairs_hook=strict_json.object_without_duplicates,
            parse_constant=strict_json.refuse_constant,
        )

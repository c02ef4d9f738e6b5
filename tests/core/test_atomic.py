"""Atomic writes: complete or absent, never a temp file left behind, the same mode whatever the umask."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from watcher.core.atomic import atomic_write_bytes, atomic_write_json

pytestmark = pytest.mark.timeout(30)


def test_a_write_replaces_the_file_and_leaves_no_temp_file(tmp_path: Path) -> None:
    target = tmp_path / "d.json"
    atomic_write_json(target, {"a": 1})
    atomic_write_json(target, {"a": 2})
    assert json.loads(target.read_text()) == {"a": 2}
    assert [p.name for p in tmp_path.iterdir()] == ["d.json"]
    assert stat.S_IMODE(target.stat().st_mode) == 0o644


def test_missing_folders_are_made(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "x.bin"
    atomic_write_bytes(target, b"\0" * 100_000, durable=False)
    assert target.read_bytes() == b"\0" * 100_000


def test_a_failed_write_leaves_the_old_file_and_no_temp_file(tmp_path: Path) -> None:
    target = tmp_path / "d.json"
    atomic_write_json(target, {"a": 1})
    with pytest.raises(TypeError):
        atomic_write_bytes(target, "not bytes")  # type: ignore[arg-type]
    assert json.loads(target.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["d.json"]


def test_a_temp_name_left_by_a_crash_is_stepped_over(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import itertools

    import watcher.core.atomic

    monkeypatch.setattr(watcher.core.atomic, "_serial", itertools.count())
    (tmp_path / f".d.json.{os.getpid()}-0.tmp").write_text("left over")
    atomic_write_json(tmp_path / "d.json", {"a": 1})
    assert json.loads((tmp_path / "d.json").read_text()) == {"a": 1}

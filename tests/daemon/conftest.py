"""The daemon tests' root: a folder with a step output that requests name, outside the watched step output
folders."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "step1.json").write_text('{"window": 12}')
    return tmp_path

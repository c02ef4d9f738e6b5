"""The layout shows the design: subpackages per concern, small modules, dependencies pointing one way."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FACES = {"__init__.py", "__main__.py", "cli.py", "errors.py", "exitcodes.py"}
MAX_MODULE_LINES = 300
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")

pytestmark = pytest.mark.timeout(120)


def test_the_package_top_level_holds_only_its_faces() -> None:
    top = {path.name for path in (REPO / "watcher").glob("*.py")}
    assert top <= FACES, f"modules outside a subpackage: {sorted(top - FACES)}"


def test_no_module_is_over_300_lines() -> None:
    long = {
        str(path.relative_to(REPO)): lines
        for package in ("watcher", "handlers")
        for path in (REPO / package).rglob("*.py")
        if (lines := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    }
    assert long == {}


def run_contracts(root: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(root)}  # the copy, ahead of the installed package
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"], check=False, cwd=root, env=env, capture_output=True, text=True, timeout=100
    )


def test_the_import_contracts_hold_and_fail_when_a_layer_imports_upward(tmp_path: Path) -> None:
    for name in ("watcher", "handlers"):
        shutil.copytree(REPO / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", tmp_path)
    assert run_contracts(tmp_path).returncode == 0
    client = tmp_path / "watcher" / "llm" / "client.py"
    # A function-level import counts as much as one at the top of the module.
    client.write_text(client.read_text() + "\n\ndef _upward() -> None:\n    from watcher.daemon import loop  # noqa\n")
    broken = run_contracts(tmp_path)
    assert broken.returncode != 0
    assert "watcher.llm is not allowed to import watcher.daemon" in broken.stdout

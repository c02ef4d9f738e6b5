"""Where the project's data folders are: the source checkout first, else the copy inside the installed package.

``agent_grammars/``, ``schemas/`` and ``config/`` live at the top of the repository; a wheel carries them under
``watcher/_data/``. Resolving through this module makes every lookup independent of the working directory.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parents[1]  # watcher/
SOURCE_ROOT = PACKAGE_DIR.parent
DATA_KINDS = ("agent_grammars", "schemas", "config")


@cache
def packaged_dir(kind: str) -> Path:
    """The folder of one data kind (``agent_grammars``, ``schemas`` or ``config``)."""
    if kind not in DATA_KINDS:
        raise ValueError(f"unknown data kind {kind!r}")
    source = SOURCE_ROOT / kind
    if source.is_dir() and (SOURCE_ROOT / "pyproject.toml").is_file():
        return source
    return PACKAGE_DIR / "_data" / kind


def schema_path(name: str) -> Path:
    return packaged_dir("schemas") / name


def grammar_dir() -> Path:
    return packaged_dir("agent_grammars")

"""Paths named in requests: made absolute, and kept inside the root or the folders a handler allows."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from watcher.config import Settings
from watcher.errors import InputError


def resolve_inside(
    settings: Settings, raw: str, file: Path, allowed: tuple[Path, ...] = (), *, lexical: bool = False
) -> Path:
    """A path from a request, made absolute; it must stay inside the root or one of ``allowed``.

    Symlinks and ``..`` are resolved before the check, so neither can lead out. ``lexical``: when the path, with
    ``..`` taken away as written, is inside, that is enough (no system call); for checks ahead of time, whose
    caller resolves the path again when it uses it. A path that is outside as written is still resolved, so an
    absolute path through a symlink to the root is not refused.
    """
    if "\x00" in raw or not raw.strip():
        raise InputError(file, f"path {raw!r} is not a usable path")
    root = str(settings.root)
    folders = (root, *map(str, allowed))
    joined = os.path.join(root, os.path.expanduser(raw))
    if lexical and inside(written := os.path.normpath(joined), normalised_folders(folders)):
        return Path(written)
    target = os.path.realpath(joined)
    if inside(target, resolved_folders(folders)):
        return Path(target)
    raise InputError(file, f"path {raw!r} leads outside {settings.root}", [f"resolves to {target}"])


def inside(target: str, folders: tuple[str, ...]) -> bool:
    return any(target == folder or target.startswith(folder + os.sep) for folder in folders)


@lru_cache(maxsize=64)
def normalised_folders(folders: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(os.path.normpath(folder) for folder in folders)


@lru_cache(maxsize=64)
def resolved_folders(folders: tuple[str, ...]) -> tuple[str, ...]:
    # Resolved once per configuration: resolving costs a system call per path component.
    return tuple(os.path.realpath(folder) for folder in folders)

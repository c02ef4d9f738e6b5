"""Crash-safe file writes: temp file in the same folder, fsync, rename, fsync of the folder.

After ``atomic_write_*`` returns, the file is either the complete new content or (after a crash before the
rename) absent; a reader never sees half a file, and the rename survives power loss.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
from pathlib import Path
from typing import Any

TEMP_MODE = 0o600  # while written; the finished file gets FILE_MODE
FILE_MODE = 0o644
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_serial = itertools.count()  # temp names: unique per process; the pid keeps processes apart


def fsync_dir(folder: Path | str) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_bytes(target: Path, data: bytes, *, durable: bool = True) -> Path:
    # Plain os calls on a file descriptor: a decision per request is written with each one a system call that
    # is needed (no buffered file object, no random name generator, no mkdir that fails on every write).
    folder = os.path.dirname(os.fspath(target)) or "."
    fd, tmp = _create_temp(target, folder)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            if durable:
                os.fsync(fd)
            os.fchmod(fd, FILE_MODE)
        finally:
            os.close(fd)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    if durable:
        fsync_dir(folder)
    return target


def _create_temp(target: Path, folder: str) -> tuple[int, str]:
    """A new, empty temp file next to ``target`` (``.<name>.<pid>-<n>.tmp``); missing folders are made."""
    made = False
    while True:
        tmp = os.path.join(folder, f".{target.name}.{os.getpid()}-{next(_serial)}.tmp")
        try:
            return os.open(tmp, _CREATE, TEMP_MODE), tmp
        except FileExistsError:  # left by a crashed process that had the same pid
            continue
        except FileNotFoundError:
            if made:
                raise
            os.makedirs(folder, exist_ok=True)
            made = True


def atomic_write_json(target: Path, payload: Any, *, durable: bool = True) -> Path:
    """``payload`` as strict JSON: a NaN or an infinity raises ValueError rather than writing what is not JSON."""
    text = json.dumps(payload, indent=2, sort_keys=False, ensure_ascii=False, allow_nan=False) + "\n"
    return atomic_write_bytes(target, text.encode("utf-8"), durable=durable)


def durable_rename(source: Path, target: Path) -> Path:
    """Rename within one filesystem and make both folders' entries durable."""
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(source, target)
    fsync_dir(target.parent)
    if source.parent != target.parent:
        fsync_dir(source.parent)
    return target

"""Crash-safe file writes: temp file in the same folder, fsync, rename, fsync of the folder.

After ``atomic_write_*`` returns, the file is either the complete new content or (after a crash before the
rename) absent; a reader never sees half a file, and the rename survives power loss.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


def fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_bytes(target: Path, data: bytes, *, durable: bool = True) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if durable:
        fsync_dir(target.parent)
    return target


def atomic_write_json(target: Path, payload: Any, *, durable: bool = True) -> Path:
    text = json.dumps(payload, indent=2, sort_keys=False, ensure_ascii=False) + "\n"
    return atomic_write_bytes(target, text.encode("utf-8"), durable=durable)


def durable_rename(source: Path, target: Path) -> Path:
    """Rename within one filesystem and make both folders' entries durable."""
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(source, target)
    fsync_dir(target.parent)
    if source.parent != target.parent:
        fsync_dir(source.parent)
    return target

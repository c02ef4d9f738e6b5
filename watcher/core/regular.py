"""Reading a file that came from outside: a regular file only, never blocking, never more than a limit.

Opened with ``O_NONBLOCK`` (a FIFO swapped in after the check cannot hang the reader) and, for files found in a
watched folder, ``O_NOFOLLOW``; the type is checked again on the open descriptor, so a file that changed type
between the check and the open is refused rather than read.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from watcher.errors import InputError


def file_kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISLNK, "a symlink"), (stat.S_ISFIFO, "a FIFO")):
        if test(mode):
            return name
    return "a regular file" if stat.S_ISREG(mode) else "a special file"


def read_regular(path: Path, max_bytes: int, *, follow: bool = False) -> tuple[bytes, os.stat_result]:
    """The bytes of a regular file of at most ``max_bytes``; anything else is an InputError. A symlink is
    refused unless ``follow`` (a path a person named, not one found in a watched folder).

    FileNotFoundError passes through: a file that vanished is not an input error.
    """
    info = os.stat(path) if follow else os.lstat(path)
    if not stat.S_ISREG(info.st_mode):
        raise InputError(path, f"not a regular file: {file_kind(info.st_mode)}")
    if info.st_size > max_bytes:
        raise InputError(path, f"file is {info.st_size} bytes, over limits.max_file_bytes ({max_bytes})")
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | (0 if follow else os.O_NOFOLLOW)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise InputError(path, f"cannot open: {exc.strerror}") from exc
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise InputError(path, f"not a regular file: {file_kind(info.st_mode)}")
        data = read_fd(fd, info.st_size, max_bytes + 1)
    finally:
        os.close(fd)
    if len(data) > max_bytes:
        raise InputError(path, f"file grew over limits.max_file_bytes ({max_bytes}) while read")
    return data, info


def read_fd(fd: int, size: int, limit: int) -> bytes:
    """At most ``limit`` bytes of a regular file of ``size`` bytes (its fstat), usually in one read: asked for one
    byte more than its size, a file that returns fewer is at its end. Buffers are as large as the file, not as
    the limit."""
    chunks: list[bytes] = []
    total = 0
    while total < limit:
        ask = limit - total if total > size else min(limit - total, size + 1 - total)
        chunk = os.read(fd, ask)
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
        if len(chunk) < ask and total >= size:
            break
    return b"".join(chunks)

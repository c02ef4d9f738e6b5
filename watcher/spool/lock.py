"""One daemon per spool: an exclusive ``flock`` on ``<state>/watcher.lock``, which also records the holder's pid.

The kernel drops the lock when the process dies, kill -9 included, so a stale lock file never blocks a restart.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from watcher.errors import AlreadyRunning

LOCK_NAME = "watcher.lock"


def read_pid(lock_file: Path) -> int | None:
    try:
        text = lock_file.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() else None


def holder(lock_file: Path) -> int | None:
    """The pid of the daemon holding the lock, or None when nobody holds it."""
    try:
        fd = os.open(lock_file, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return read_pid(lock_file) or -1
    finally:
        os.close(fd)  # closing drops a shared lock taken just now
    return None


class SpoolLock:
    def __init__(self, lock_file: Path) -> None:
        self.path = lock_file
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock or raise AlreadyRunning naming the holder's pid."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise AlreadyRunning(self.path, read_pid(self.path)) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode("ascii"))
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> SpoolLock:
        self.acquire()
        return self

    def __exit__(self, *_: object) -> None:
        self.release()

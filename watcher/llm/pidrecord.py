"""The pid record of a started llama-server: how a later process finds the server an earlier one left behind.

Written right after the spawn, removed once the server is stopped. A pid alone is not an identity - the kernel
reuses pids - so the record also keeps the process's create time and command line, and a record only
*matches* a live process when all of them agree.
"""

from __future__ import annotations

import contextlib
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil
from loguru import logger

from watcher.core.atomic import atomic_write_json

CREATE_TIME_TOLERANCE_SEC = 0.01


@dataclass(frozen=True)
class PidRecord:
    server: str
    pid: int
    pgid: int
    host: str
    port: int
    binary: str
    model: str
    command: tuple[str, ...]
    started_at: float  # wall clock, for people
    create_time: float  # psutil's process create time, for pid-reuse safety
    startup: int
    dies_with_parent: bool

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(path, asdict(self), durable=False)

    def process(self) -> psutil.Process | None:
        """The live, non-zombie process this record describes, or None when it is gone or the pid was reused."""
        try:
            proc = psutil.Process(self.pid)
            same = abs(proc.create_time() - self.create_time) <= CREATE_TIME_TOLERANCE_SEC
            return proc if same and proc.status() != psutil.STATUS_ZOMBIE else None
        except psutil.Error:
            return None


def record_path(state_dir: Path, server: str) -> Path:
    return state_dir / f"llm-{server}.pid.json"


def read_record(path: Path) -> PidRecord | None:
    """The record at ``path``; None when there is none or it cannot be understood (it is then set aside)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        data["command"] = tuple(data["command"])
        return PidRecord(**data)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError, KeyError) as exc:
        logger.warning("ignoring unreadable pid record {}: {}", path, exc)
        with contextlib.suppress(OSError):
            path.replace(path.with_suffix(f".bad-{int(time.time())}"))
        return None


def remove_record(path: Path, pid: int | None = None) -> None:
    """Remove the record, but only if it still describes ``pid`` (a newer start may have replaced it)."""
    if pid is not None:
        current = read_record(path)
        if current is not None and current.pid != pid:
            return
    path.unlink(missing_ok=True)

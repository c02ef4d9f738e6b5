"""A llama-server process as its manager knows it: how it was launched, the process it looks after, and what a
stop aims at (a process group, reaped when it is our child)."""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from watcher.config import ServerConfig
from watcher.llm.pidrecord import PidRecord, read_record
from watcher.llm.process import ProcessGroup


@dataclass(frozen=True)
class Launch:
    """One start attempt of server ``name``."""

    name: str
    config: ServerConfig
    command: tuple[str, ...]
    model: Path
    log_file: Path
    record_file: Path
    startup: int  # the number this start gets when it succeeds
    dies_with_parent: bool


@dataclass(frozen=True)
class ServerProcess:
    """A llama-server a manager looks after: spawned by it (``popen``), or adopted from a pid record."""

    record: PidRecord
    group: ProcessGroup
    popen: subprocess.Popen[bytes] | None
    started: float  # monotonic

    @property
    def found_by(self) -> str:
        return "this process" if self.popen is not None else "pid record"

    def alive(self) -> bool:
        if self.popen is not None:
            return self.popen.poll() is None
        return self.record.process() is not None

    def target(self) -> Target:
        return Target(self.group, self.popen, self.found_by)


@dataclass(frozen=True)
class Target:
    group: ProcessGroup
    popen: subprocess.Popen[bytes] | None  # set when it is our child: we reap it
    found_by: str


def who_runs(
    server: ServerProcess | None, record_file: Path, startups: int
) -> tuple[str, int | None, float | None, int]:
    """Who runs the server (owner, pid, uptime) and its start count, from the tracked process or the pid record."""
    if server is not None and server.alive():
        return server.found_by, server.record.pid, time.monotonic() - server.started, startups
    record = read_record(record_file)
    if record is not None and record.process() is not None:
        uptime = max(0.0, time.time() - record.started_at)
        return "pid record", record.pid, uptime, max(startups, record.startup)
    return "", None, None, startups

"""Stopping server process groups: SIGTERM, wait, SIGKILL, and what it freed."""

from __future__ import annotations

import signal
import time
from pathlib import Path

from loguru import logger

from watcher.config import ServerConfig
from watcher.errors import LLMServerError
from watcher.llm.memory import gpu_memory_of, group_rss, wait_gpu_released
from watcher.llm.pidrecord import PidRecord
from watcher.llm.process import ProcessGroup, find_servers, wait_port_free
from watcher.llm.server_process import ServerProcess, Target
from watcher.llm.status import StopReport

KILL_WAIT_SEC = 5.0  # after SIGKILL the kernel needs milliseconds; longer means a process stuck in the kernel
PORT_FREE_WAIT_SEC = 2.0
GPU_RELEASE_BOUND_SEC = 10.0  # drivers list a dead process's memory for a while


def find_targets(
    server: ServerProcess | None, record: PidRecord | None, binary: Path | None, port: int
) -> list[Target]:
    """Everything a stop must reach: our live server, the one in the pid record, llama-servers of this binary on
    the port (left by a crash before the record was written)."""
    targets: dict[int, Target] = {}
    if server is not None:
        targets[server.record.pid] = server.target()
    if record is not None and record.pid not in targets and record.process() is not None:
        targets[record.pid] = Target(ProcessGroup(record.pgid, record.pid), None, "pid record")
    for proc in find_servers(binary, port) if binary else ():
        targets.setdefault(proc.pid, Target(ProcessGroup.of(proc.pid), None, "process scan"))
    return list(targets.values())


def stop_targets(name: str, config: ServerConfig, targets: list[Target], timeout: float) -> StopReport:
    """Stop every target; returns once each group is gone and the port is free (or its bound passed)."""
    requested = time.monotonic()
    pids: list[int] = []
    rss = 0
    forced = False
    gpu_held: int | None = None
    for target in targets:
        members = [p.pid for p in target.group.members()] or [target.group.leader]
        pids += members
        rss += group_rss(target.group)
        held = gpu_memory_of(members)
        gpu_held = None if held is None else (gpu_held or 0) + held
        forced = terminate(name, target, timeout) or forced
    port_free = wait_port_free(config.host, config.port, time.monotonic() + PORT_FREE_WAIT_SEC)
    if not port_free:
        logger.warning("llm server {!r}: {}:{} still in use after the stop", name, config.host, config.port)
    seconds = time.monotonic() - requested
    freed = None if gpu_held is None else wait_gpu_released(pids, gpu_held, GPU_RELEASE_BOUND_SEC)
    return StopReport(name, True, tuple(pids), targets[0].found_by, forced, seconds, rss, freed, port_free)


def terminate(name: str, target: Target, timeout: float) -> bool:
    """SIGTERM the group, wait up to ``timeout``, then SIGKILL; returns whether SIGKILL was needed."""
    reap = target.popen.poll if target.popen is not None else None
    target.group.signal(signal.SIGTERM)
    forced = not target.group.wait_gone(time.monotonic() + timeout, reap)
    if forced:
        logger.warning("llm server {!r}: still running {:g}s after SIGTERM, killing it", name, timeout)
        kill(name, target)
    if target.popen is not None:
        target.popen.wait()
    return forced


def kill(name: str, target: Target) -> None:
    reap = target.popen.poll if target.popen is not None else None
    target.group.signal(signal.SIGKILL)
    if not target.group.wait_gone(time.monotonic() + KILL_WAIT_SEC, reap):
        raise LLMServerError(name, f"process group {target.group.pgid} survives SIGKILL (stuck in the kernel?)")
    if target.popen is not None:
        target.popen.wait()

"""The daemon's steps outside its loop: a reload on SIGHUP, the drain on stop.

Reload: load the config again and say whether it can take over from the running one. A config that does not
load (or whose judge cannot be built, or that moves the folders) is refused: the running one stays in force, and
the refusal is shown as a fault (status.json, metrics, STATUS=) until a reload succeeds.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from loguru import logger

from watcher.config import Settings
from watcher.daemon.sizing import worker_count
from watcher.errors import WatcherError
from watcher.judging.protocols import StepJudge
from watcher.spool.folders import SpoolPaths

if TYPE_CHECKING:
    from watcher.daemon.loop import Daemon

TICK_SEC = 1.0  # while draining, the watchdog is fed and outcomes are collected at least this often


def load(daemon: Daemon) -> tuple[Settings, StepJudge] | None:
    """The new settings and judge, or None when the running ones are kept."""
    faults = daemon.scheduler.faults
    if daemon._reload_settings is None:
        logger.warning("SIGHUP: no config source to reload from")
        return None
    try:
        new = daemon._reload_settings()
        judge = daemon._judge_factory(new) if daemon._judge_factory else daemon.judge
    except WatcherError as exc:
        logger.error("config not reloaded, keeping the running one: {}", exc)
        faults.config_failed(f"config not reloaded, the running one is kept: {exc}")
        return None
    if SpoolPaths.from_settings(new) != daemon.spool.paths:
        logger.error("config not reloaded: folders cannot change while running; restart the daemon")
        faults.config_failed("config not reloaded: folders cannot change while running")
        return None
    faults.config_loaded()
    if worker_count(new) != daemon.workers:
        logger.warning("concurrency changes take effect on restart; keeping {} worker(s)", daemon.workers)
    if new.watcher.limits.cpu != daemon.settings.watcher.limits.cpu:
        logger.warning("limits.cpu changes take effect on restart; the threads stay where they are")
    return new, judge


def drain(daemon: Daemon) -> bool:
    """Wait for running jobs; True when abandoned (second signal or drain_timeout)."""
    assert daemon.pool is not None
    deadline = time.monotonic() + daemon.drain_timeout
    while daemon.pool.busy > 0:
        now = time.monotonic()
        if daemon.flags.force or now >= deadline:
            logger.warning("abandoning {} running evaluation(s)", daemon.slots.active)
            return True
        daemon.waker.wait(min(TICK_SEC, deadline - now))
        daemon._collect(now)
        if daemon._watchdog_every:
            daemon.notifier.watchdog()
    daemon._collect(time.monotonic())
    return False

"""How many workers and threads the daemon runs, and how long a shutdown waits for running evaluations."""

from __future__ import annotations

from watcher.config import Settings

MIN_THREADS = 8  # worker threads even for one evaluation slot: writing decisions (fsync) overlaps


def worker_count(settings: Settings) -> int:
    """limits.concurrency, else the evaluation server's parallel slots."""
    server = settings.server(settings.watcher.evaluation.server)
    return settings.watcher.limits.concurrency or server.parallel_slots


def default_drain_timeout(settings: Settings) -> float:
    """The longest one evaluation can take: a server start, then every attempt plus the fallback."""
    server = settings.server(settings.watcher.evaluation.server)
    evaluation = settings.watcher.evaluation
    return server.health_check_deadline_sec + evaluation.request_timeout_sec * (evaluation.max_attempts + 1)

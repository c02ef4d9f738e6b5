"""What the running daemon tells the outside: ``<state>/status.json``, the metrics file and systemd's STATUS=.

``watcher status`` reads the status file. It is rewritten atomically when the status line changes and at least
every ``FILES_EVERY_SEC`` seconds while there is work or a running server (every quiet tick, 30 s, otherwise), so
its ``updated_at`` shows the daemon is alive. The LLM server's status is asked for at that pace too (it may probe
the server's /health).
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from loguru import logger

from watcher.config import Settings
from watcher.core.atomic import atomic_write_json
from watcher.core.clock import now_iso
from watcher.daemon.metrics import METRICS_NAME, Metrics
from watcher.daemon.sdnotify import Notifier

STATUS_NAME = "status.json"
FILES_EVERY_SEC = 5.0


def as_mapping(status: Any) -> dict[str, Any]:
    """A lifecycle status (a dataclass with ``as_dict`` or a mapping) as JSON-ready data."""
    data = status.as_dict() if hasattr(status, "as_dict") else dict(status)
    result: dict[str, Any] = json.loads(json.dumps(data, default=str))
    return result


@dataclass(frozen=True)
class Load:
    """How busy the daemon is right now."""

    queue_depth: int
    in_flight: int
    workers: int
    waiting_steps: tuple[tuple[str, str], ...] = ()  # (file, step): outputs whose step has not finished
    faults: list[dict[str, Any]] = field(default_factory=list)  # faults of the installation (daemon.faults)
    fault_line: str = ""  # the first of them, for STATUS=


class StateWriter:
    def __init__(
        self,
        settings: Settings,
        metrics: Metrics,
        notifier: Notifier,
        server_status: Callable[[], Any],
        load: Callable[[], Load],
    ) -> None:
        self.folder = settings.path(settings.watcher.folders.state)
        self.where = {"root": str(settings.root), "config_dir": str(settings.config_dir)}
        self.metrics, self.notifier = metrics, notifier
        self._server_status, self._load = server_status, load
        self.started_at = now_iso()
        self.server_stops = 0
        self._server: dict[str, Any] = {}
        self._line = ""
        self._next_files = 0.0

    def refresh_server(self) -> dict[str, Any]:
        try:
            server = as_mapping(self._server_status())
        except Exception as exc:  # status must never take the daemon down
            server = {"state": "unknown", "error": str(exc)}
        server["stops"] = self.server_stops
        server["up"] = server.get("state") == "running"
        self._server = server
        return server

    def status_line(self) -> str:
        load = self._load()
        state = self._server.get("state", "unknown")
        return f"{load.fault_line}queue {load.queue_depth}, in flight {load.in_flight}, server {state}"

    def snapshot(self, state: str, load: Load) -> dict[str, Any]:
        return {
            "pid": os.getpid(),
            "state": state,
            "started_at": self.started_at,
            "updated_at": now_iso(),
            **self.where,
            "workers": load.workers,
            "in_flight": load.in_flight,
            "queue_depth": load.queue_depth,
            "faults": load.faults,
            "outcomes": dict(self.metrics.outcomes),
            "waiting_steps": [
                {"file": file, "step": step, "state": f"waiting for step {step} to finish"}
                for file, step in load.waiting_steps
            ],
            "server": self._server,
        }

    def started(self) -> None:
        self.refresh_server()
        self.write("running")

    def stopped(self) -> None:
        self.refresh_server()
        self.write("stopped")

    def tick(self, now: float, *, refresh: bool = False) -> None:
        files_due = refresh or now >= self._next_files
        if files_due:
            self.refresh_server()
        line = self.status_line()
        if line != self._line:
            self.notifier.status(line)
            self._line = line
            files_due = True
        if files_due:
            self.write("running")
            self._next_files = now + FILES_EVERY_SEC

    def write(self, state: str) -> None:
        load = self._load()
        gauges = {"queue_depth": float(load.queue_depth), "workers": float(load.workers)}
        gauges["in_flight"] = float(load.in_flight)
        self.metrics.set_waiting(Counter(step for _, step in load.waiting_steps))
        gauges["installation_faults"] = float(len(load.faults))
        gauges["waiting_on_faults"] = float(sum(f.get("waiting", 0) for f in load.faults))
        try:
            atomic_write_json(self.folder / STATUS_NAME, self.snapshot(state, load), durable=False)
            self.metrics.write(self.folder / METRICS_NAME, gauges, self._server)
        except OSError as exc:
            logger.warning("cannot write status or metrics in {}: {}", self.folder, exc)

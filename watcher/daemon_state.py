"""What the running daemon tells the outside: ``<state>/status.json``, the metrics file and systemd's STATUS=.

``watcher status`` reads the status file; it is rewritten atomically when the status line changes and at least
every ``FILES_EVERY_SEC`` seconds, so its ``updated_at`` shows the daemon is alive.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from loguru import logger

from watcher.atomic import atomic_write_json
from watcher.metrics import METRICS_NAME
from watcher.spool import now_iso

if TYPE_CHECKING:
    from watcher.daemon import Daemon

STATUS_NAME = "status.json"
FILES_EVERY_SEC = 5.0


def server_state(server: Mapping[str, Any]) -> str:
    state = server.get("state")
    if isinstance(state, str):
        return state
    running = server.get("running")
    return "unknown" if running is None else ("running" if running else "stopped")


class StateWriter:
    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon
        self.started_at = now_iso()
        self._line = ""
        self._next_files = 0.0

    def server(self) -> Mapping[str, Any]:
        try:
            return self.daemon.lifecycle.status()
        except Exception as exc:  # status must never take the daemon down
            return {"state": "unknown", "error": str(exc)}

    def status_line(self, server: Mapping[str, Any] | None = None) -> str:
        daemon = self.daemon
        running = daemon.pool.running if daemon.pool is not None else 0
        state = server_state(server if server is not None else self.server())
        return f"queue {daemon.dispatcher.depth}, in flight {running}, server {state}"

    def snapshot(self, state: str, server: Mapping[str, Any]) -> dict[str, Any]:
        daemon = self.daemon
        return {
            "pid": os.getpid(),
            "state": state,
            "started_at": self.started_at,
            "updated_at": now_iso(),
            "root": str(daemon.settings.root),
            "config_dir": str(daemon.settings.config_dir),
            "workers": daemon.workers,
            "in_flight": daemon.pool.running if daemon.pool is not None else 0,
            "queue_depth": daemon.dispatcher.depth,
            "outcomes": dict(daemon.metrics.outcomes),
            "server": json.loads(json.dumps(dict(server), default=str)),
        }

    def started(self) -> None:
        self.write("running", self.server())

    def stopped(self) -> None:
        self.write("stopped", self.server())

    def tick(self, now: float) -> None:
        server = self.server()
        line = self.status_line(server)
        changed = line != self._line
        if changed:
            self.daemon.notifier.status(line)
            self._line = line
        if changed or now >= self._next_files:
            self.write("running", server)
            self._next_files = now + FILES_EVERY_SEC

    def write(self, state: str, server: Mapping[str, Any]) -> None:
        daemon = self.daemon
        folder = daemon.spool.paths.state
        gauges = {"queue_depth": float(daemon.dispatcher.depth), "workers": float(daemon.workers)}
        gauges["in_flight"] = float(daemon.pool.running if daemon.pool is not None else 0)
        try:
            atomic_write_json(folder / STATUS_NAME, self.snapshot(state, server), durable=False)
            daemon.metrics.write(folder / METRICS_NAME, gauges, server)
        except OSError as exc:
            logger.warning("cannot write status or metrics in {}: {}", folder, exc)

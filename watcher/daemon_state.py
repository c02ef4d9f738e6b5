"""What the running daemon tells the outside: ``<state>/status.json``, the metrics file and systemd's STATUS=.

``watcher status`` reads the status file. It is rewritten atomically when the status line changes and at least
every ``FILES_EVERY_SEC`` seconds while there is work or a running server (every quiet tick, 30 s, otherwise), so
its ``updated_at`` shows the daemon is alive. The LLM server's status is asked for at that pace too (it may probe
the server's /health).
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any

from loguru import logger

from watcher.atomic import atomic_write_json
from watcher.metrics import METRICS_NAME
from watcher.spool import now_iso

if TYPE_CHECKING:
    from watcher.daemon import Daemon

STATUS_NAME = "status.json"
FILES_EVERY_SEC = 5.0


def as_mapping(status: Any) -> dict[str, Any]:
    """A lifecycle status (a dataclass with ``as_dict`` or a mapping) as JSON-ready data."""
    data = status.as_dict() if hasattr(status, "as_dict") else dict(status)
    result: dict[str, Any] = json.loads(json.dumps(data, default=str))
    return result


class StateWriter:
    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon
        self.started_at = now_iso()
        self.server_stops = 0
        self._server: dict[str, Any] = {}
        self._line = ""
        self._next_files = 0.0

    def refresh_server(self) -> dict[str, Any]:
        try:
            server = as_mapping(self.daemon.lifecycle.status())
        except Exception as exc:  # status must never take the daemon down
            server = {"state": "unknown", "error": str(exc)}
        server["stops"] = self.server_stops
        server["up"] = server.get("state") == "running"
        self._server = server
        return server

    def status_line(self) -> str:
        daemon = self.daemon
        running = daemon.slots.active
        state = self._server.get("state", "unknown")
        return f"queue {daemon.queue_depth}, in flight {running}, server {state}"

    def snapshot(self, state: str) -> dict[str, Any]:
        daemon = self.daemon
        return {
            "pid": os.getpid(),
            "state": state,
            "started_at": self.started_at,
            "updated_at": now_iso(),
            "root": str(daemon.settings.root),
            "config_dir": str(daemon.settings.config_dir),
            "workers": daemon.workers,
            "in_flight": daemon.slots.active,
            "queue_depth": daemon.queue_depth,
            "outcomes": dict(daemon.metrics.outcomes),
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
            self.daemon.notifier.status(line)
            self._line = line
            files_due = True
        if files_due:
            self.write("running")
            self._next_files = now + FILES_EVERY_SEC

    def write(self, state: str) -> None:
        daemon = self.daemon
        folder = daemon.spool.paths.state
        gauges = {"queue_depth": float(daemon.queue_depth), "workers": float(daemon.workers)}
        gauges["in_flight"] = float(daemon.slots.active)
        try:
            atomic_write_json(folder / STATUS_NAME, self.snapshot(state), durable=False)
            daemon.metrics.write(folder / METRICS_NAME, gauges, self._server)
        except OSError as exc:
            logger.warning("cannot write status or metrics in {}: {}", folder, exc)

"""Metrics in the Prometheus textfile format (node_exporter's textfile collector reads ``<state>/watcher.prom``).

Counters of requests by outcome, a histogram of evaluation latency, queue gauges and the LLM server's starts and
stops as its lifecycle manager reports them. The file is replaced atomically, never seen half-written.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from watcher.core.atomic import atomic_write_bytes

METRICS_NAME = "watcher.prom"
BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
# Lifecycle status keys exported when present and numeric: key -> (metric, type, help).
SERVER_KEYS = {
    "startups": ("watcher_llm_server_starts_total", "counter", "LLM server starts by this daemon."),
    "stops": ("watcher_llm_server_stops_total", "counter", "LLM server stops by this daemon."),
    "up": ("watcher_llm_server_up", "gauge", "1 while the LLM server is running."),
    "uptime_sec": ("watcher_llm_server_uptime_seconds", "gauge", "Seconds since the server started."),
}


class Metrics:
    def __init__(self) -> None:
        self.started = time.time()
        self.outcomes: Counter[str] = Counter()
        self.notifications: Counter[str] = Counter()  # notify command runs: sent, failed, dropped
        self._buckets = [0] * len(BUCKETS)
        self._count = 0
        self._sum = 0.0
        self.waiting: dict[str, int] = {}

    def set_waiting(self, steps: Mapping[str, int]) -> None:
        """Per step key, how many of its outputs wait for the step to finish."""
        self.waiting = dict(steps)

    def outcome(self, name: str) -> None:
        self.outcomes[name] += 1

    def notify(self, result: str) -> None:
        self.notifications[result] += 1

    def observe(self, seconds: float) -> None:
        self._count += 1
        self._sum += seconds
        for i, bound in enumerate(BUCKETS):
            if seconds <= bound:
                self._buckets[i] += 1

    def render(self, gauges: Mapping[str, float], server: Mapping[str, Any]) -> str:
        lines = [
            "# HELP watcher_requests_total Requests and step outputs handled, by outcome.",
            "# TYPE watcher_requests_total counter",
            *(f'watcher_requests_total{{outcome="{k}"}} {v}' for k, v in sorted(self.outcomes.items())),
            *(f'watcher_notify_total{{result="{k}"}} {v}' for k, v in sorted(self.notifications.items())),
            "# HELP watcher_evaluation_seconds Time a handler took to produce a decision.",
            "# TYPE watcher_evaluation_seconds histogram",
            *(
                f'watcher_evaluation_seconds_bucket{{le="{b}"}} {n}'
                for b, n in zip(BUCKETS, self._buckets, strict=True)
            ),
            f'watcher_evaluation_seconds_bucket{{le="+Inf"}} {self._count}',
            f"watcher_evaluation_seconds_sum {self._sum:.6f}",
            f"watcher_evaluation_seconds_count {self._count}",
            "# TYPE watcher_start_time_seconds gauge",
            f"watcher_start_time_seconds {self.started:.3f}",
        ]
        for name, value in sorted(gauges.items()):
            lines += [f"# TYPE watcher_{name} gauge", f"watcher_{name} {value:g}"]
        lines += [
            "# HELP watcher_step_outputs_waiting Step outputs not judged yet: their step has not finished.",
            "# TYPE watcher_step_outputs_waiting gauge",
            # A step key is a label value ("2.5"), never part of a metric name.
            *(f'watcher_step_outputs_waiting{{step="{k}"}} {v}' for k, v in sorted(self.waiting.items())),
        ]
        for key, (metric, kind, text) in SERVER_KEYS.items():
            reported = server.get(key)
            if isinstance(reported, bool | int | float):
                lines += [f"# HELP {metric} {text}", f"# TYPE {metric} {kind}", f"{metric} {float(reported):g}"]
        return "\n".join(lines) + "\n"

    def write(self, file: Path, gauges: Mapping[str, float], server: Mapping[str, Any]) -> None:
        atomic_write_bytes(file, self.render(gauges, server).encode("utf-8"), durable=False)

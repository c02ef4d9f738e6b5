"""A person is told: the configured notify command (``notify.argv``) run for events worth a person's attention.

Classes as the pipeline's own operator pages use them: ``critical`` (an escalation, the LLM server down),
``degraded`` (a retry, a rejected request), ``info`` (a decision). The command gets the event as JSON on stdin and
a one-line message as its last argument; it is an argument list, never a shell line, and nothing from a request
reaches it except inside the JSON and the message. It runs on a thread of its own, one at a time, bounded by
``notify.timeout_sec`` (its process group is killed after that), so a slow or hung command never holds up the main
loop; when events pile up faster than it runs, the overflow is dropped and counted. Failures are logged and counted
in the metrics (``watcher_notify_total``).
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from loguru import logger

from watcher.config.pipeline import NotifyConfig
from watcher.core.clock import now_iso
from watcher.daemon.execute import Outcome
from watcher.daemon.metrics import Metrics

EventClass = Literal["critical", "degraded", "info"]
QUEUE_LIMIT = 64
MESSAGE_CHARS = 300


@dataclass(frozen=True)
class Event:
    level: EventClass
    event: str
    message: str
    data: dict[str, Any] = field(default_factory=dict)

    def document(self) -> dict[str, Any]:
        return {"class": self.level, "event": self.event, "message": self.message, "at": now_iso(), **self.data}


def events_of(outcome: Outcome) -> list[Event]:
    """What a finished job tells a person, if anything."""
    job = outcome.job
    data: dict[str, Any] = {"request_id": job.id, "request_type": job.request.type, "source": job.source}
    summary = dict(outcome.summary or {})
    if outcome.result == "retry":
        if outcome.server_down and job.attempts == 0:  # the first failure of this job, not every backoff
            return [Event("critical", "server_failure", f"LLM server unavailable: {outcome.error}", data)]
        return [] if outcome.server_down else [Event("degraded", "retry", f"retrying {job.id}: {outcome.error}", data)]
    if outcome.result == "rejected":
        return [Event("degraded", "rejected", f"rejected {job.source}: {outcome.error}", data)]
    data |= summary
    reasoning = str(summary.get("reasoning") or "")
    if outcome.result == "escalated" or summary.get("decision") == "escalate":
        text = f"ACTION REQUIRED: {job.id} ({job.request.type}) escalated: {reasoning}"
        return [Event("critical", "escalation", text, data)]
    if outcome.result == "decided":
        return [Event("info", "decision", f"{job.id} ({job.request.type}): {summary.get('decision')}", data)]
    return []


class Alerts:
    def __init__(self, config: NotifyConfig, metrics: Metrics, cwd: Path | None = None) -> None:
        # cwd: the root, so a relative program path in notify.argv resolves against it, as a job's does
        self.config, self.metrics, self.cwd = config, metrics, cwd
        self._queue: queue.Queue[Event | None] = queue.Queue(QUEUE_LIMIT)
        self._thread: threading.Thread | None = None

    def outcomes(self, outcomes: list[Outcome]) -> list[Outcome]:
        """Tell a person what these finished jobs call for; returns them, for the scheduler."""
        for outcome in outcomes:
            for event in events_of(outcome):
                self.send(event)
        return outcomes

    def send(self, event: Event) -> None:
        """Queue ``event`` when its class is enabled and a command is configured; never blocks."""
        if self.config.argv is None or not getattr(self.config.classes, event.level):
            return
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="notify", daemon=True)
            self._thread.start()
        try:
            self._queue.put_nowait(event)
        except queue.Full:
            self.metrics.notify("dropped")
            logger.warning("notify: queue full, {} event dropped", event.event)

    def close(self) -> None:
        """Let queued events go out, for at most about two command timeouts, then stop the thread."""
        if self._thread is None:
            return
        with contextlib.suppress(queue.Full):
            self._queue.put(None, timeout=self.config.timeout_sec)
        # A daemon thread: one still delivering after this is abandoned with the process, never waited on.
        self._thread.join(2 * self.config.timeout_sec + 1)
        self._thread = None

    def _run(self) -> None:
        while (event := self._queue.get()) is not None:
            self.metrics.notify("sent" if self._deliver(event) else "failed")

    def _deliver(self, event: Event) -> bool:
        argv = self.config.argv or ()
        message = " ".join(event.message.split())[:MESSAGE_CHARS]
        message = f"[WATCHER][{event.level.upper()}] {message}"
        body = json.dumps(event.document(), default=str).encode("utf-8")
        try:
            process = subprocess.Popen([*argv, message], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                       stderr=subprocess.PIPE, start_new_session=True, cwd=self.cwd)  # fmt: skip
        except OSError as exc:
            logger.error("notify: cannot run {}: {}", argv[0], exc)
            return False
        try:
            _, stderr = process.communicate(body, timeout=self.config.timeout_sec)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            logger.error("notify: {} did not finish within {}s; killed", argv[0], self.config.timeout_sec)
            return False
        if process.returncode != 0:
            detail = stderr.decode("utf-8", "replace").strip()[-300:]
            logger.error("notify: {} exited with {}: {}", argv[0], process.returncode, detail)
            return False
        return True

"""Fast stand-ins for the judge, for daemon tests that need no LLM.

``WATCHER_TEST_JUDGE=tests.support.daemon_fakes:from_env`` makes ``watcher run`` use ``FakeJudge`` configured by:
FAKE_JUDGE_DELAY (seconds one judgement takes), FAKE_JUDGE_CALLS (a file that gets one line per call),
FAKE_JUDGE_MARKERS (a folder that gets ``<request id>.judging`` when a judgement starts).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from tests.support.records import evaluation_body
from watcher.config import Settings


class FakeJudge:
    def __init__(self, delay: float = 0.0, calls_file: Path | None = None, markers: Path | None = None) -> None:
        self.delay = delay
        self.calls_file = calls_file
        self.markers = markers
        self.calls: Counter[str] = Counter()
        self.gate: threading.Event | None = None  # in-process tests: hold judgements until set
        self._lock = threading.Lock()

    def judge(self, file: Path, step: str | None = None, *, request_id: str | None = None) -> dict[str, Any]:
        if self.markers is not None:
            (self.markers / f"{request_id}.judging").touch()
        if self.gate is not None:
            self.gate.wait(30)
        if self.delay:
            time.sleep(self.delay)  # stands for the time an evaluation takes, not for synchronisation
        with self._lock:
            self.calls[str(request_id)] += 1
            if self.calls_file is not None:
                with self.calls_file.open("a") as handle:
                    handle.write(f"{request_id}\n")
        return evaluation_body(file, step)


def from_env(settings: Settings) -> FakeJudge:
    calls = os.environ.get("FAKE_JUDGE_CALLS")
    markers = os.environ.get("FAKE_JUDGE_MARKERS")
    return FakeJudge(
        delay=float(os.environ.get("FAKE_JUDGE_DELAY", "0")),
        calls_file=Path(calls) if calls else None,
        markers=Path(markers) if markers else None,
    )


def write_config(
    root: Path,
    *,
    workers: int = 2,
    settle: float = 0.2,
    grace: float = 0.5,
    rescan: float = 1.0,
    max_bytes: int = 65536,
    polling: bool = False,
    cpu: str | int = "auto",
) -> Path:
    """A config folder under ``root`` for a daemon with short timings; returns the config folder."""
    import json

    config = root / "config"
    config.mkdir(parents=True, exist_ok=True)
    llm = {"schema_version": "2.1.0", "servers": {"primary": {"port": 1, "parallel_slots": workers}}}
    steps = {
        "1": {
            "name": "Window Optimizer",
            "output_glob": "pipeline_outputs/step1.json",
            "schema_file": "step1_window_optimizer.schema.json",
        },
        "2": {
            "name": "Sieve",
            "output_glob": "pipeline_outputs/runs/*/step2.json",
            "schema_file": "step2_bidirectional_sieve.schema.json",
        },
    }
    watcher = {
        "steps": steps,
        "limits": {"max_file_bytes": max_bytes, "cpu": cpu},
        "intake": {
            "rescan_interval_sec": rescan,
            "settle_sec": settle,
            "invalid_grace_sec": grace,
            "polling_observer": polling,
        },
    }
    (config / "llm_server_config.json").write_text(json.dumps(llm))
    (config / "watcher.json").write_text(json.dumps(watcher))
    return config


class FakeLifecycle:
    """Records what the daemon asks of the LLM lifecycle."""

    def __init__(self) -> None:
        self.idle_checks = 0
        self.stops = 0

    def idle_check_and_stop(self, now: float | None = None) -> None:
        self.idle_checks += 1

    def stop(self) -> SimpleNamespace:
        self.stops += 1
        return SimpleNamespace(stopped=True)  # like the lifecycle's StopReport

    def status(self) -> dict[str, Any]:
        return {"state": "stopped", "startups": 0, "pid": None}


def request(request_id: str | None = None, file: str = "data/step1.json", **extra: Any) -> bytes:
    import json

    body: dict[str, Any] = {"type": "evaluate_step", "step": "1", "file": file, **extra}
    if request_id is not None:
        body["id"] = request_id
    return json.dumps(body).encode()


def drop(folder: Path, name: str, data: bytes) -> Path:
    """How a well-behaved producer delivers: write a hidden temp file, then rename it into place."""
    temp = folder / f".{name}.tmp"
    temp.write_bytes(data)
    target = folder / name
    os.rename(temp, target)
    return target


def count_json(folder: Path) -> int:
    return sum(1 for p in folder.iterdir() if p.suffix == ".json" and not p.name.endswith(".error.json"))


@contextlib.contextmanager
def running_daemon(settings: Settings, judge: Any, lifecycle: Any = None, **options: Any) -> Iterator[Any]:
    """A daemon on a thread of this process (no signal handlers); stopped and checked on exit."""
    from tests.support.helpers import wait_until
    from watcher.daemon.loop import Daemon
    from watcher.daemon.server import NullLifecycle

    daemon = Daemon(settings, judge, lifecycle or NullLifecycle(), **options)
    result: list[int] = []
    thread = threading.Thread(target=lambda: result.append(daemon.run(install_signals=False)), daemon=True)
    thread.start()
    assert wait_until(lambda: daemon.ready.is_set() or not thread.is_alive(), timeout=10), "daemon did not start"
    assert thread.is_alive(), "daemon exited during start-up"
    try:
        yield daemon
    finally:
        daemon.request_stop()
        thread.join(30)
        assert not thread.is_alive(), "daemon did not stop"
        assert result == [0]


def folders(root: Path) -> dict[str, Path]:
    spool = root / "watcher_requests"
    return {
        "requests": spool,
        "done": spool / "done",
        "rejected": spool / "rejected",
        "processing": spool / "processing",
        "decisions": root / "watcher_decisions",
    }

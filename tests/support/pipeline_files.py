"""The pipeline's Chapter 13 files, written the way its code writes them, and a daemon wired to the job fakes."""

from __future__ import annotations

import contextlib
import json
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.daemon_fakes import running_daemon
from tests.support.helpers import wait_until
from tests.support.jobs.harness import EXAMPLES, JOBS, FakeAdjuster, FakeJudge, autonomy
from watcher.autonomy.orchestrator import Autonomy
from watcher.config import Settings

STEP_NAMES = {"1": "s1", "2": "s2", "3": "s3", "4": "s4", "5": "s5", "6": "s6"}


def loop_steps(root: Path, port: int, hold: Path | None = None) -> dict[str, Any]:
    """A learning loop with one job per pipeline step 1-6 (``s1`` .. ``s6``), each judged as its step."""
    steps = []
    for number, name in STEP_NAMES.items():
        out = f"out/{name}.json"
        template = str(EXAMPLES / f"step{number}_good.json")
        argv = [sys.executable, str(JOBS / "step.py"), "--name", name, "--out", out, "--port", str(port),
                "--template", template, "--record", str(root / "record.jsonl")]  # fmt: skip
        if hold is not None and number == "5":
            argv += ["--hold-until", str(hold)]
        steps.append({"name": name, "argv": argv, "output": out, "judge_step": number, "timeout_sec": 60})
    return {"steps": steps, "max_retries": 0}


def selfplay_request(request_id: str = "selfplay_20260130_021543", **extra: Any) -> dict[str, Any]:
    """Exactly the keys ``Chapter13TriggerManager.request_selfplay`` writes."""
    return {
        "request_id": request_id,
        "request_type": "selfplay_retrain",
        "created_at": "2026-01-30T02:15:43.860849+00:00",
        "status": "pending",
        "reason": "Diagnostics flagged SELFPLAY_RECOMMENDED",
        "source_policy": "policy_selfplay_20260129_234039_ep010",
        "priority": "normal",
        "requested_by": "chapter_13_triggers",
        "requires_watcher_approval": True,
        **extra,
    }


def approval_file(request_id: str = "ch13_20260115_024307", steps: list[int] | None = None) -> dict[str, Any]:
    """Exactly the keys ``Chapter13TriggerManager.request_approval`` writes."""
    metrics = {"consecutive_misses": 5, "correlation": 0.3, "hit_rate": 0.02, "draws_since_retrain": 4,
               "all_triggers": ["consecutive_misses"]}  # fmt: skip
    evaluation = {"should_trigger": True, "trigger_type": "consecutive_misses", "action": "learning_loop",
                  "confidence": 0.9, "reasoning": "5 consecutive misses", "metrics": metrics,
                  "requires_approval": True, "cooldown_remaining": 0}  # fmt: skip
    return {
        "request_id": request_id,
        "created_at": "2026-01-15T02:43:07.123456+00:00",
        "status": "pending",
        "evaluation": evaluation,
        "diagnostics_file": "post_draw_diagnostics.json",
        "action_required": "learning_loop",
        "steps_to_run": steps if steps is not None else [3, 5, 6],
        "approval_instructions": "CHAPTER 13 RETRAIN REQUEST\nTrigger: consecutive_misses\n",
    }


def write_like_the_pipeline(path: Path, document: dict[str, Any], pieces: int = 3, pause: float = 0.7) -> None:
    """``open(path, "w")`` + ``json.dump(indent=2)``, delivered slowly: the file is visible, truncated and
    half-written for longer than the daemon's settle time, with no temp file and no rename."""
    text = json.dumps(document, indent=2)
    size = -(-len(text) // pieces)
    with path.open("w") as handle:
        for start in range(0, len(text), size):
            handle.write(text[start : start + size])
            handle.flush()
            if start + size < len(text):
                time.sleep(pause)  # the slow writer being simulated, not a synchronisation


@contextlib.contextmanager
def writing(path: Path, document: dict[str, Any], **options: Any) -> Iterator[threading.Thread]:
    thread = threading.Thread(target=write_like_the_pipeline, args=(path, document), kwargs=options)
    thread.start()
    try:
        yield thread
    finally:
        thread.join(30)


def wire_autonomy(monkeypatch: pytest.MonkeyPatch, judge: FakeJudge) -> None:
    """Handlers build their Autonomy per request: give them the job fakes' (no LLM server, scripted judge)."""

    def create(cls: type[Autonomy], settings: Settings, *_: Any, **__: Any) -> Autonomy:
        return autonomy(settings, judge, FakeAdjuster())

    monkeypatch.setattr(Autonomy, "create", classmethod(create))


@contextlib.contextmanager
def daemon(settings: Settings, judge: FakeJudge) -> Iterator[Any]:
    with running_daemon(settings, judge) as running:
        yield running


def decision(settings: Settings, request_id: str, timeout: float = 30) -> dict[str, Any]:
    file = settings.path(settings.watcher.folders.decisions) / f"{request_id}.json"
    assert wait_until(file.exists, timeout=timeout), f"no decision for {request_id}"
    return json.loads(file.read_text())  # type: ignore[no-any-return]


def log_lines(settings: Settings) -> list[dict[str, Any]]:
    assert settings.watcher.decision_log is not None
    file = settings.path(settings.watcher.decision_log)
    return [json.loads(line) for line in file.read_text().splitlines()] if file.exists() else []

"""The notify command: run for each escalation and, by class, for other events; event JSON on stdin, a one-line
message as the last argument; bounded by a timeout, off the main loop, failures counted."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from tests.handlers.test_approvals import APPROVALS, RID
from tests.handlers.test_pipeline_requests import settings_for
from tests.support.helpers import wait_until
from tests.support.jobs.harness import FakeJudge
from tests.support.pipeline_files import approval_file, daemon, decision, wire_autonomy, writing
from watcher.config.pipeline import NotifyConfig
from watcher.daemon.alerts import Alerts
from watcher.daemon.execute import Outcome
from watcher.daemon.metrics import Metrics

pytestmark = pytest.mark.timeout(60)
RECORDER = Path(__file__).resolve().parents[1] / "support" / "notify_recorder.py"


def received(file: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in file.read_text().splitlines()] if file.exists() else []


def notify(out: Path, *extra: str, **fields: Any) -> dict[str, Any]:
    return {"argv": [sys.executable, str(RECORDER), str(out), *extra], "timeout_sec": 5, **fields}


def test_an_escalation_pages_a_person(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "pages.jsonl"
    settings = settings_for(tmp_path, APPROVALS, notify=notify(out))
    judge = FakeJudge([])
    wire_autonomy(monkeypatch, judge)
    with daemon(settings, judge) as running, writing(tmp_path / "pending_approval.json", approval_file(RID)):
        decision(settings, RID)
        assert wait_until(lambda: received(out), timeout=20)
    [page] = received(out)
    message = page["argv"][-1]
    assert message.startswith("[WATCHER][CRITICAL] ACTION REQUIRED: ch13_") and "\n" not in message
    event = page["event"]
    assert (event["class"], event["event"], event["request_id"]) == ("critical", "escalation", RID)
    assert event["escalation"].endswith(f"{RID}.json") and "approval_required" in event["reasoning"]
    assert running.metrics.notifications == {"sent": 1}


def outcome(result: str, **fields: Any) -> Outcome:
    job = SimpleNamespace(id="r1", source="r1.json", attempts=0, request=SimpleNamespace(type="evaluate_step"))
    return Outcome(job, result, 0.1, **fields)  # type: ignore[arg-type]


def test_classes_pick_what_is_sent(tmp_path: Path) -> None:
    out = tmp_path / "pages.jsonl"
    metrics = Metrics()
    alerts = Alerts(NotifyConfig.model_validate(notify(out, classes={"info": False})), metrics)
    try:
        alerts.outcomes([
            outcome("retry", error="server gone", server_down=True),
            outcome("retry", error="disk full"),
            outcome("decided", summary={"decision": "proceed", "reasoning": "fine"}),
        ])  # fmt: skip
        assert wait_until(lambda: len(received(out)) == 2, timeout=20)
    finally:
        alerts.close()
    kinds = [(page["event"]["class"], page["event"]["event"]) for page in received(out)]
    assert kinds == [("critical", "server_failure"), ("degraded", "retry")]
    assert metrics.notifications == {"sent": 2}
    assert 'watcher_notify_total{result="sent"} 2' in metrics.render({}, {})


def test_a_failing_or_hung_command_is_counted_and_never_blocks(tmp_path: Path) -> None:
    out = tmp_path / "pages.jsonl"
    metrics = Metrics()
    hung = Alerts(NotifyConfig.model_validate(notify(out, "--hang", timeout_sec=0.5)), metrics)
    failing = Alerts(NotifyConfig.model_validate(notify(out, "--exit", "3")), metrics)
    try:
        start = time.monotonic()
        hung.outcomes([outcome("escalated", summary={"decision": "escalate"})])
        failing.outcomes([outcome("escalated", summary={"decision": "escalate"})])
        assert time.monotonic() - start < 0.2, "sending waited for the command"
        assert wait_until(lambda: metrics.notifications["failed"] == 2, timeout=20), metrics.notifications
    finally:
        hung.close()
        failing.close()
    assert len(received(out)) == 2  # both ran and got their event; neither counted as sent


def test_no_command_no_thread(tmp_path: Path) -> None:
    alerts = Alerts(NotifyConfig(), Metrics())
    alerts.outcomes([outcome("escalated", summary={"decision": "escalate"})])
    assert alerts._thread is None

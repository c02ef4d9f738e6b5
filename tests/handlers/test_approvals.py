"""The orchestrator's ``pending_approval.json``, written as the orchestrator writes it: the policy wants a person
-> an escalation, the file left pending -> ``watcher approve`` runs exactly ``steps_to_run`` -> the file says
``completed_by_watcher`` with every key it had; ``watcher deny`` -> ``rejected``, nothing runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.handlers.test_pipeline_requests import settings_for
from tests.support.helpers import wait_until
from tests.support.jobs.harness import FakeJudge, starts
from tests.support.pipeline_files import approval_file, daemon, decision, log_lines, wire_autonomy, writing
from watcher.cli import main
from watcher.config import Settings
from watcher.exitcodes import ExitCode

pytestmark = pytest.mark.timeout(120)
APPROVALS = {"approval_required": {"retrain_execution": True, "regime_reset": True, "parameter_application": True}}
RID = "ch13_20260115_024307"


@pytest.fixture(autouse=True)
def quiet_cli(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("watcher.cli.configure_logging", lambda *args, **kwargs: None)
    monkeypatch.setenv("WATCHER_OPERATOR", "alice")


def cli(settings: Settings, *args: str) -> int:
    return main(["--config-dir", str(settings.config_dir), *args])


def escalated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Settings, FakeJudge]:
    settings = settings_for(tmp_path, APPROVALS)
    judge = FakeJudge([])
    wire_autonomy(monkeypatch, judge)
    return settings, judge


def wait_for_escalation(settings: Settings) -> dict[str, Any]:
    record = decision(settings, RID)
    assert record["decision"] == "escalate" and record["request_type"] == "pending_approval"
    assert any("approval_required.retrain_execution" in reason for reason in record["reasons"])
    return record


def test_approve_runs_exactly_the_listed_steps_and_keeps_every_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    settings, judge = escalated(tmp_path, monkeypatch)
    original = approval_file(RID, [3, 5, 6])
    file = tmp_path / "pending_approval.json"
    with daemon(settings, judge):
        with writing(file, original):
            wait_for_escalation(settings)
        assert json.loads(file.read_text())["status"] == "pending" and starts(tmp_path) == []

        assert cli(settings, "escalations", "--json") == ExitCode.OK
        [listed] = json.loads(capsys.readouterr().out)
        assert listed["id"] == RID and listed["can_approve"] and listed["since"]
        assert listed["would_run"] == [{"action": "run_learning_loop", "reason": "5 consecutive misses",
                                        "steps": ["3", "5", "6"]}]  # fmt: skip

        assert cli(settings, "approve", RID, "--note", "looked at the diagnostics") == ExitCode.OK
        record = decision(settings, f"{RID}.approved")
    assert record["decision"] == "proceed", record.get("reasoning")
    assert starts(tmp_path) == ["s3", "s5", "s6"], "exactly steps_to_run: step 4 must not run"
    assert record["approval"]["decided_by"] == "alice" and record["approval"]["note"] == "looked at the diagnostics"
    assert record["approval_file"]["statuses"] == ["processing_by_watcher", "completed_by_watcher"]
    after = json.loads(file.read_text())
    assert after["status"] == "completed_by_watcher" and after["approved_by"] == "alice"
    assert {key: value for key, value in after.items() if key in original and key != "status"} == {
        key: value for key, value in original.items() if key != "status"
    }, "a key the orchestrator wrote was lost or changed"
    assert set(original) <= set(after)
    assert [line["request_id"] for line in log_lines(settings)] == [RID, f"{RID}.approved"]
    assert cli(settings, "approve", RID) == ExitCode.INVALID_INPUT, "an escalation is decided once"


def test_deny_marks_the_file_rejected_and_nothing_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    settings, judge = escalated(tmp_path, monkeypatch)
    original = approval_file(RID, [3, 5, 6])
    file = tmp_path / "pending_approval.json"
    with daemon(settings, judge):
        with writing(file, original):
            wait_for_escalation(settings)
        assert cli(settings, "status") == ExitCode.OK
        assert "waiting for a person: 1 (watcher escalations)" in capsys.readouterr().out
        assert cli(settings, "escalations") == ExitCode.OK
        listing = capsys.readouterr().out
        assert listing.startswith(f"{RID}  since ") and "would run: run_learning_loop steps 3,5,6" in listing
        assert "why: policy.approval_required.retrain_execution" in listing
        assert cli(settings, "deny", RID, "--reason", "diagnostics are stale") == ExitCode.OK
        after = json.loads(file.read_text())
        assert after["status"] == "rejected" and after["rejection_reason"] == "diagnostics are stale"
        assert after["rejected_by"] == "alice" and set(original) <= set(after)
        assert cli(settings, "escalations") == ExitCode.OK
        assert capsys.readouterr().out == "nothing waits for a person\n"
    assert starts(tmp_path) == []
    assert [line["request_id"] for line in log_lines(settings)] == [RID]
    assert cli(settings, "approve", RID) == ExitCode.INVALID_INPUT, "a denied escalation cannot be approved"


def test_within_policy_the_file_runs_without_a_person(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = settings_for(tmp_path)
    judge = FakeJudge([])
    wire_autonomy(monkeypatch, judge)
    file = tmp_path / "pending_approval.json"
    with daemon(settings, judge), writing(file, approval_file(RID, [5, 6])):
        record = decision(settings, RID)
        assert wait_until(lambda: json.loads(file.read_text())["status"] == "completed_by_watcher", timeout=10)
    assert record["decision"] == "proceed" and starts(tmp_path) == ["s5", "s6"]


def test_an_approval_never_lifts_a_hard_bound(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings, judge = escalated(tmp_path, monkeypatch)
    request = {"type": "chapter_13", "id": "c13-bound", "advice": {
        "actions": [{"action": "adjust_parameter", "parameter": "games", "current": 100, "proposed": 5000,
                     "reason": "far more"}],
        "risk": "low", "confidence": 0.9, "reasoning": "r"}}  # fmt: skip
    with daemon(settings, judge):
        (settings.path(settings.watcher.folders.requests) / "c13.json").write_text(json.dumps(request))
        first = decision(settings, "c13-bound")
        assert first["decision"] == "escalate"
        assert cli(settings, "approve", "c13-bound") == ExitCode.OK
        record = decision(settings, "c13-bound.approved")
    assert record["decision"] == "escalate"
    assert any("5000 is above the maximum" in reason for reason in record["reasons"])
    assert not any("approval_required" in reason for reason in record["reasons"]), "the approval lifted that"


def test_an_invalid_approval_file_gets_an_error_record_and_stays(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, judge = escalated(tmp_path, monkeypatch)
    file = tmp_path / "pending_approval.json"
    rejected = settings.path(settings.watcher.folders.rejected)
    with daemon(settings, judge), writing(file, approval_file(RID, [])):
        assert wait_until(lambda: list(rejected.glob("*.error.json")), timeout=30)
    [error] = [json.loads(p.read_text()) for p in rejected.glob("*.error.json")]
    assert "steps_to_run" in " ".join(error["details"]) and error["path"] == str(file)
    assert json.loads(file.read_text())["status"] == "pending" and starts(tmp_path) == []
    assert log_lines(settings) == []

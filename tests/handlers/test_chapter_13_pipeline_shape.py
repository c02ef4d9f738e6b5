"""The pipeline advisor's proposal shape (recommended_action, retrain_scope, parameter_proposals, ...): emitted by
``watcher advise --format pipeline`` and accepted by the ``chapter_13`` request as it is."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from handlers import registry
from handlers.chapter_13 import Chapter13Request, process_chapter_13_request
from tests.handlers.test_chapter_13_advise import PLATEAU, advise
from tests.handlers.test_pipeline_requests import settings_for
from tests.support.jobs.fake_model import FakeModel
from tests.support.jobs.harness import FakeAdjuster, FakeJudge, autonomy, starts
from watcher.exitcodes import ExitCode
from watcher.llm import lifecycle
from watcher.requests.contract import HandlerContext
from watcher.requests.validate import parse_request

pytestmark = pytest.mark.timeout(60)


def proposal(**changes: Any) -> dict[str, Any]:
    games = {"parameter": "games", "current_value": 100, "proposed_value": 150, "delta": "+50", "confidence": 0.8,
             "rationale": "more games"}  # fmt: skip
    return {"analysis_summary": "the model overfits on stale selfplay data", "failure_mode": "model_overfit",
            "confidence": 0.8, "recommended_action": "RETRAIN", "retrain_scope": "steps_5_6",
            "parameter_proposals": [games], "risk_level": "low", "requires_human_review": False,
            "alternative_hypothesis": None} | changes  # fmt: skip


def run(tmp_path: Path, advice: dict[str, Any], request_id: str = "c13-pipeline") -> dict[str, Any]:
    settings = settings_for(tmp_path)
    auto = autonomy(settings, FakeJudge([]), FakeAdjuster())
    request = Chapter13Request.model_validate({"type": "chapter_13", "id": request_id, "advice": advice})
    return process_chapter_13_request(request, HandlerContext(settings, auto.judge, request_id), auto)


def test_retrain_with_a_scope_runs_those_steps_after_the_parameter_change(tmp_path: Path) -> None:
    record = run(tmp_path, proposal())
    assert record["decision"] == "proceed", record.get("reasoning")
    adjusted, loop = record["actions"]
    assert (adjusted["parameter"], adjusted["before"], adjusted["after"]) == ("games", 100, 150)
    assert [r["name"] for r in loop["runs"]] == ["s5", "s6"] and starts(tmp_path) == ["s5", "s6"]
    assert record["advice"]["recommended_action"] == "RETRAIN"


@pytest.mark.parametrize(
    ("changes", "reason"),
    [({"recommended_action": "ESCALATE"}, "the advisor recommends ESCALATE"),
     ({"requires_human_review": True}, "requires_human_review"),
     ({"risk_level": "high"}, "risk 'high' is above the policy maximum")],
)  # fmt: skip
def test_what_asks_for_a_person_is_escalated(tmp_path: Path, changes: dict[str, Any], reason: str) -> None:
    record = run(tmp_path, proposal(**changes))
    assert record["decision"] == "escalate" and starts(tmp_path) == []
    assert any(reason in r for r in record["reasons"]), record["reasons"]


def test_wait_runs_nothing(tmp_path: Path) -> None:
    record = run(tmp_path, proposal(recommended_action="WAIT", retrain_scope=None, parameter_proposals=[]))
    assert record["decision"] == "proceed" and starts(tmp_path) == []
    assert [a["action"] for a in record["actions"]] == ["no_action"]


def test_advise_can_emit_the_pipeline_shape(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    model = FakeModel({"chapter_13_proposal": [proposal()]})
    monkeypatch.setattr(lifecycle, "get_lifecycle_manager", lambda *args, **kwargs: model)
    code, settings = advise(tmp_path, "--diagnostics", str(PLATEAU), "--format", "pipeline")
    out, err = capsys.readouterr()
    assert code == ExitCode.OK, err
    printed = json.loads(out)
    assert printed["type"] == "chapter_13" and printed["advice"] == proposal()
    request = parse_request(out.encode(), Path("advice.json"), settings, registry())
    assert request.type == "chapter_13"

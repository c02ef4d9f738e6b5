"""Every kind of decision the daemon writes validates against the shipped schema: one request of each type, and
an evaluation that could not get a validated answer (an escalation record)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from tests.support.daemon_fakes import FakeJudge, running_daemon
from tests.support.helpers import wait_until
from tests.support.jobs.harness import make_settings
from watcher.core.datadirs import schema_path
from watcher.errors import EvaluationError

pytestmark = pytest.mark.timeout(120)

REQUESTS: dict[str, dict[str, Any]] = {
    "evaluate_step": {"type": "evaluate_step", "id": "one-step", "step": "1", "file": "data/step1.json"},
    "chapter_13": {
        "type": "chapter_13",
        "id": "one-advice",
        "source": "test",
        "advice": {
            "actions": [
                {"action": "adjust_parameter", "parameter": "games", "current": 100, "proposed": 200, "reason": "r"},
                {"action": "run_selfplay", "reason": "fresh data"},
            ],
            "risk": "low",
            "confidence": 0.9,
            "reasoning": "stale selfplay data",
        },
    },
    "run_selfplay": {"type": "run_selfplay", "id": "one-selfplay", "parameters": {"games": 300}, "reason": "r"},
    "run_learning_loop": {"type": "run_learning_loop", "id": "one-loop", "parameters": {"learning_rate": 0.05}},
}


class EscalatingJudge(FakeJudge):
    """No validated answer for files named ``unanswerable*``; a checks-only evaluation for the rest."""

    def judge(self, file: Path, step: str | None = None, *, request_id: str | None = None) -> dict[str, Any]:
        if file.name.startswith("unanswerable"):
            raise EvaluationError("3 attempts gave no valid answer", [{"number": 1, "outcome": "invalid"}])
        return super().judge(file, step, request_id=request_id)


def test_a_decision_of_each_kind_validates_against_the_shipped_schema(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    (tmp_path / "data").mkdir()
    for name in ("step1.json", "unanswerable.json"):
        (tmp_path / "data" / name).write_text('{"window": 12}')
    requests = REQUESTS | {
        "escalation": {"type": "evaluate_step", "id": "one-escalation", "step": "1", "file": "data/unanswerable.json"}
    }
    spool = settings.path(settings.watcher.folders.requests)
    decisions = settings.path(settings.watcher.folders.decisions)
    with running_daemon(settings, EscalatingJudge()):
        for body in requests.values():
            (spool / f"{body['id']}.json").write_text(json.dumps(body))
        assert wait_until(lambda: len(list(decisions.glob("*.json"))) == len(requests), timeout=90)
    validator = Draft202012Validator(json.loads(schema_path("decision_record.schema.json").read_text()))
    kinds = {}
    for kind, body in requests.items():
        record = json.loads((decisions / f"{body['id']}.json").read_text())
        assert list(validator.iter_errors(record)) == [], kind
        assert record["request_id"] == body["id"] and record["request_type"] == body["type"]
        kinds[kind] = record["kind"]
    assert kinds == {
        "evaluate_step": "evaluation",
        "chapter_13": "plan",
        "run_selfplay": "plan",
        "run_learning_loop": "plan",
        "escalation": "escalation",
    }

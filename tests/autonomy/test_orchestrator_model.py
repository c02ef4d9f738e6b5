"""The retry path through the real evaluator and adjuster, with a fake server forcing the model's answers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from handlers.chapter_13 import Chapter13Request, process_chapter_13_request
from tests.support.jobs.fake_model import FakeModel, decision
from tests.support.jobs.harness import make_settings, records, starts
from watcher.autonomy.orchestrator import Autonomy
from watcher.requests.contract import HandlerContext

pytestmark = pytest.mark.timeout(60)

ADJUST = {"adjustments": [{"parameter": "learning_rate", "current": 0.1, "proposed": 0.05, "reason": "smaller steps"}],
          "confidence": 0.8}  # fmt: skip


def always_ask(steps: dict[str, Any]) -> dict[str, Any]:
    return {number: step | {"ask_model": "always"} for number, step in steps.items()}


def run_plan(tmp_path: Path, model: FakeModel, *actions: dict[str, Any]) -> dict[str, Any]:
    # Every output goes to the (fake) model, so its scripted answers decide.
    auto = Autonomy.create(make_settings(tmp_path, steps=always_ask, checks={}), server=model)
    body = {"actions": list(actions), "risk": "low", "confidence": 0.9, "reasoning": "plateau"}
    request = Chapter13Request.model_validate({"type": "chapter_13", "id": "c13-model", "advice": body})
    ctx = HandlerContext(settings=auto.settings, judge=auto.judge, request_id="c13-model")
    try:
        return process_chapter_13_request(request, ctx, auto)
    finally:
        model.stop()


def test_a_retry_verdict_reruns_the_step_with_the_models_adjustment(tmp_path: Path) -> None:
    # scoring: proceed; meta: retry, then proceed after learning_rate 0.1 -> 0.05.
    model = FakeModel({"agent_decision": [decision("proceed"), decision("retry"), decision("proceed")],
                       "parameter_adjustment": [ADJUST]})  # fmt: skip
    record = run_plan(tmp_path, model, {"action": "run_learning_loop", "reason": "retrain"})
    assert record["decision"] == "proceed", record.get("reasoning")
    runs = record["actions"][0]["runs"]
    assert [(r["name"], r["decision"]) for r in runs] == [
        ("scoring", "proceed"),
        ("meta", "retry"),
        ("meta", "proceed"),
    ]
    assert runs[1]["judgement"]["parse_method"] == "grammar_constrained"
    assert runs[1]["adjustment"]["record"]["parse_method"] == "grammar_constrained"
    assert runs[1]["adjustment"]["applied"] == {"learning_rate": 0.05}
    assert "--knob" in runs[2]["argv"] and runs[2]["argv"][runs[2]["argv"].index("--knob") + 1] == "0.05"
    assert starts(tmp_path) == ["scoring", "meta", "meta"]
    assert [grammar for grammar, _ in model.asked] == ["agent_decision", "agent_decision", "parameter_adjustment",
                                                       "agent_decision"]  # fmt: skip
    # The server was stopped before every job and started for every judgement.
    assert model.events == ["stop", "start", "stop", "start", "stop", "start", "stop"]
    assert not any(line["port_answered"] for line in records(tmp_path))


def test_the_adjustment_prompt_names_the_parameters_their_values_and_limits(tmp_path: Path) -> None:
    model = FakeModel({"agent_decision": [decision("proceed"), decision("retry"), decision("proceed")],
                       "parameter_adjustment": [ADJUST]})  # fmt: skip
    run_plan(tmp_path, model, {"action": "run_learning_loop", "reason": "retrain"})
    prompt = next(p for grammar, p in model.asked if grammar == "parameter_adjustment")
    assert "- learning_rate = 0.1 (float; from 0.001, to 0.5, change at most 75% of the current value)" in prompt
    assert "Step 'meta'" in prompt and "scripted retry" in prompt


def test_an_adjustment_the_policy_refuses_escalates_the_loop(tmp_path: Path) -> None:
    too_far = {"adjustments": [{"parameter": "learning_rate", "current": 0.1, "proposed": 0.9, "reason": "bold"}],
               "confidence": 0.9}  # fmt: skip
    model = FakeModel({"agent_decision": [decision("proceed"), decision("retry")], "parameter_adjustment": [too_far]})
    record = run_plan(tmp_path, model, {"action": "run_learning_loop", "reason": "retrain"})
    assert record["decision"] == "escalate"
    assert "above the policy maximum 0.5" in record["reasons"][0]
    assert starts(tmp_path) == ["scoring", "meta"]
    assert Path(record["escalation"]).is_file()

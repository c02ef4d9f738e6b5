"""Dispatch with a fake server, judge and adjuster: the order of transitions, retries, escalations, replays."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tests.support.jobs.harness import FakeAdjuster, FakeJudge, autonomy, make_settings, records, starts
from watcher.autonomy.orchestrator import Orchestrator
from watcher.autonomy.policy import Value
from watcher.errors import LLMServerError

pytestmark = pytest.mark.timeout(60)


def orchestrator(tmp_path: Path, script: dict[str, list[str]] | None = None, *rounds: dict[str, Value]) -> Orchestrator:
    events: list[str] = []
    auto = autonomy(make_settings(tmp_path), FakeJudge(events, script), FakeAdjuster(*rounds))
    return auto.orchestrator("req-1")


def events_of(d: Orchestrator) -> list[str]:
    return d.judge.events  # type: ignore[attr-defined, no-any-return]


def test_selfplay_stops_the_server_runs_the_job_then_judges_its_output(tmp_path: Path) -> None:
    d = orchestrator(tmp_path)
    trace = d.dispatch_selfplay({"games": 250, "tag": "t1"}, "req-1.1")
    assert events_of(d) == ["stop", "judge:selfplay.json"]
    assert trace["decision"] == "proceed"
    run = trace["runs"][0]
    assert run["job"]["exit_code"] == 0 and run["parameters"] == {"games": 250, "tag": "t1"}
    assert run["judgement"]["payload"]["run_id"] == "sp-250-t1"  # the output judged is the one this run wrote
    assert [r["port_answered"] for r in records(tmp_path)] == [False, False]


def test_learning_loop_runs_every_step_in_order_when_each_proceeds(tmp_path: Path) -> None:
    d = orchestrator(tmp_path)
    trace = d.dispatch_learning_loop({"learning_rate": 0.01}, "req-1.1")
    assert trace["decision"] == "proceed"
    assert events_of(d) == ["stop", "judge:scoring.json", "stop", "judge:meta.json"]
    assert starts(tmp_path) == ["scoring", "meta"]


def test_retry_reruns_the_step_with_adjusted_parameters_then_proceeds(tmp_path: Path) -> None:
    d = orchestrator(tmp_path, {"meta.json": ["retry", "proceed"]}, {"learning_rate": 0.04})
    trace = d.dispatch_learning_loop({"learning_rate": 0.1}, "req-1.1")
    assert trace["decision"] == "proceed", trace["reason"]
    meta = [run for run in trace["runs"] if run["name"] == "meta"]
    assert [run["parameters"]["learning_rate"] for run in meta] == [0.1, 0.04]
    assert meta[0]["adjustment"]["applied"] == {"learning_rate": 0.04}
    assert "0.04" in meta[1]["argv"]
    assert starts(tmp_path) == ["scoring", "meta", "meta"]


def test_an_adjustment_outside_policy_escalates_without_a_rerun(tmp_path: Path) -> None:
    # 0.1 -> 0.01 is a 90% change; the policy allows 75% per request.
    d = orchestrator(tmp_path, {"meta.json": ["retry"]}, {"learning_rate": 0.01})
    trace = d.dispatch_learning_loop({"learning_rate": 0.1}, "req-1.1")
    assert trace["decision"] == "escalate"
    assert "is more than 75% of 0.1" in trace["reason"]
    assert starts(tmp_path) == ["scoring", "meta"]


def test_an_adjustment_of_a_parameter_the_step_lacks_escalates(tmp_path: Path) -> None:
    d = orchestrator(tmp_path, {"meta.json": ["retry"]}, {"games": 200})
    trace = d.dispatch_learning_loop({"learning_rate": 0.1}, "req-1.1")
    assert "step meta has no such parameter" in trace["reason"]


def test_retries_are_bounded(tmp_path: Path) -> None:
    d = orchestrator(tmp_path, {"meta.json": ["retry"]}, {"learning_rate": 0.09}, {"learning_rate": 0.08})
    trace = d.dispatch_learning_loop({"learning_rate": 0.1}, "req-1.1")
    assert trace["decision"] == "escalate" and "still judged retry after 2 rerun(s)" in trace["reason"]
    assert starts(tmp_path) == ["scoring", "meta", "meta", "meta"]


def test_the_same_values_again_are_no_reason_to_rerun(tmp_path: Path) -> None:
    d = orchestrator(tmp_path, {"meta.json": ["retry"]}, {"learning_rate": 0.1})
    trace = d.dispatch_learning_loop({"learning_rate": 0.1}, "req-1.1")
    assert "the values that were just judged retry" in trace["reason"]
    assert starts(tmp_path) == ["scoring", "meta"]


def test_a_low_confidence_adjustment_is_not_applied(tmp_path: Path) -> None:
    d = orchestrator(tmp_path, {"meta.json": ["retry"]})
    d.adjuster = FakeAdjuster({"learning_rate": 0.05}, confidence=0.2)
    trace = d.dispatch_learning_loop({"learning_rate": 0.1}, "req-1.1")
    assert "adjustment confidence 0.2 is below the policy minimum 0.6" in trace["reason"]


def test_escalate_stops_the_loop(tmp_path: Path) -> None:
    d = orchestrator(tmp_path, {"scoring.json": ["escalate"]})
    trace = d.dispatch_learning_loop({"learning_rate": 0.01}, "req-1.1")
    assert trace["decision"] == "escalate" and "judged escalate" in trace["reason"]
    assert starts(tmp_path) == ["scoring"]


def test_a_failed_job_is_escalated_and_its_output_not_judged(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    events: list[str] = []
    auto = autonomy(settings, FakeJudge(events), FakeAdjuster())
    step = auto.policy.loop.steps[0].model_copy(update={"argv": (*auto.policy.loop.steps[0].argv, "--exit-code", "4")})
    entry = auto.orchestrator("req-1").attempt("scoring", step, {}, "req-1.1.scoring.1")
    assert entry["decision"] == "escalate" and "exited with code 4" in entry["reason"]
    assert events == ["stop"]


def test_a_finished_attempt_is_replayed_not_run_or_judged_again(tmp_path: Path) -> None:
    d = orchestrator(tmp_path)
    first = d.dispatch_selfplay({"games": 100, "tag": "a"}, "req-1.1")
    again = d.dispatch_selfplay({"games": 100, "tag": "a"}, "req-1.1")
    assert starts(tmp_path) == ["selfplay"]
    assert events_of(d) == ["stop", "judge:selfplay.json"]
    assert again["runs"][0]["replayed"] and again["runs"][0]["judgement"] == first["runs"][0]["judgement"]


def test_no_job_starts_while_the_server_still_answers(tmp_path: Path) -> None:
    d = orchestrator(tmp_path)
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        d.server.base_url = f"http://127.0.0.1:{listener.getsockname()[1]}"  # type: ignore[misc]
        with pytest.raises(LLMServerError, match="still answers"):
            d.dispatch_selfplay({"games": 100, "tag": "a"}, "req-1.1")
    assert starts(tmp_path) == []

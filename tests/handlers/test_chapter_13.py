"""Chapter 13 and direct job requests with fakes: policy first, then dispatch in order, one trace per request."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from handlers import registry
from handlers.chapter_13 import Chapter13Request, process_chapter_13_request
from handlers.run_learning_loop import RunLearningLoopRequest
from handlers.run_learning_loop import handle as handle_loop
from handlers.run_selfplay import RunSelfplayRequest
from handlers.run_selfplay import handle as handle_selfplay
from tests.support.helpers import wait_until
from tests.support.jobs.harness import (
    FakeAdjuster,
    FakeJudge,
    autonomy,
    make_settings,
    run_until_waiting_then_release,
    starts,
)
from watcher.autonomy.orchestrator import Autonomy
from watcher.config import load_settings
from watcher.requests.contract import HandlerContext
from watcher.requests.validate import parse_request

pytestmark = pytest.mark.timeout(60)
REPO = Path(__file__).resolve().parents[2]


def advice(*actions: dict[str, Any], confidence: float = 0.9, risk: str = "low") -> dict[str, Any]:
    return {"actions": list(actions), "risk": risk, "confidence": confidence, "reasoning": "from the diagnostics"}


def adjust(name: str, current: Any, proposed: Any) -> dict[str, Any]:
    return {"action": "adjust_parameter", "parameter": name, "current": current, "proposed": proposed, "reason": "r"}


SELFPLAY = {"action": "run_selfplay", "reason": "refresh data"}
LOOP = {"action": "run_learning_loop", "reason": "retrain"}


def setup(tmp_path: Path, script: dict[str, list[str]] | None = None, **overrides: Any) -> tuple[Autonomy, list[str]]:
    events: list[str] = []
    settings = make_settings(tmp_path, **overrides)
    return autonomy(settings, FakeJudge(events, script), FakeAdjuster({"learning_rate": 0.05})), events


def submit(auto: Autonomy, request_id: str, body: dict[str, Any]) -> dict[str, Any]:
    request = Chapter13Request.model_validate({"type": "chapter_13", "id": request_id, "advice": body})
    ctx = HandlerContext(settings=auto.settings, judge=auto.judge, request_id=request_id)
    return process_chapter_13_request(request, ctx, auto)


def escalation(auto: Autonomy, request_id: str) -> dict[str, Any]:
    folder = auto.settings.path(auto.settings.watcher.folders.escalations)
    return json.loads((folder / f"{request_id}.json").read_text())  # type: ignore[no-any-return]


def test_an_approved_plan_runs_in_order_and_leaves_one_trace(tmp_path: Path) -> None:
    auto, events = setup(tmp_path, {"meta.json": ["retry", "proceed"]})
    record = submit(auto, "c13-ok", advice(adjust("games", 100, 300), SELFPLAY, LOOP))
    assert record["decision"] == "proceed", record.get("reasoning")
    assert [v["verdict"] for v in record["policy"]["proposals"]] == ["approved"] * 3
    adjusted, selfplay, loop = record["actions"]
    assert (adjusted["before"], adjusted["after"]) == (100, 300)
    assert selfplay["runs"][0]["parameters"]["games"] == 300 and selfplay["runs"][0]["job"]["exit_code"] == 0
    assert [run["name"] for run in loop["runs"]] == ["scoring", "meta", "meta"]
    assert loop["runs"][1]["judgement"]["decision"] == "retry"
    assert loop["runs"][2]["parameters"]["learning_rate"] == 0.05
    assert starts(tmp_path) == ["selfplay", "scoring", "meta", "meta"]
    assert events == ["stop", "judge:selfplay.json", "stop", "judge:scoring.json", "stop", "judge:meta.json",
                      "stop", "judge:meta.json"]  # fmt: skip
    assert auto.state.snapshot()["values"] == {"games": 300}
    assert not auto.settings.path("watcher_escalations").exists()


@pytest.mark.parametrize(
    ("actions", "fields", "overrides", "reason"),
    [
        ([adjust("games", 100, 5000), SELFPLAY], {}, {}, "above the maximum 1000"),
        ([SELFPLAY], {}, {"policy": lambda p: p | {"allowed_actions": ["no_action"]}},
         "'run_selfplay' is not in policy.allowed_actions"),
        ([adjust("tag", "base", "x;rm -rf ~"), SELFPLAY], {}, {}, "character ';' is not allowed"),
        ([adjust("tag", "base", "$(reboot)"), SELFPLAY], {}, {}, "character '$' is not allowed"),
        ([adjust("tag", "base", "../../etc"), SELFPLAY], {}, {}, "'..' path segments are not allowed"),
        ([SELFPLAY], {"confidence": 0.4}, {}, "confidence 0.4 is below the policy minimum 0.6"),
        ([SELFPLAY], {"risk": "high"}, {}, "risk 'high' is above the policy maximum 'medium'"),
        ([SELFPLAY, LOOP], {}, {"policy": lambda p: p | {"max_actions_per_hour": 1}}, "exceeds the policy maximum"),
    ],
)  # fmt: skip
def test_outside_policy_is_escalated_with_its_reason_and_nothing_runs(
    tmp_path: Path, actions: list[dict[str, Any]], fields: dict[str, Any], overrides: dict[str, Any], reason: str
) -> None:
    auto, events = setup(tmp_path, **overrides)
    record = submit(auto, "c13-denied", advice(*actions, **fields))
    assert record["decision"] == "escalate" and record["actions"] == []
    assert any(reason in r for r in record["reasons"]), record["reasons"]
    written = escalation(auto, "c13-denied")
    assert written["executed"] is False and any(reason in r for r in written["reasons"])
    assert starts(tmp_path) == [] and events == []
    assert not auto.runner.state_dir.exists(), "a job record exists: something was started"


def test_too_many_actions_per_hour_counts_earlier_requests(tmp_path: Path) -> None:
    auto, _ = setup(tmp_path, policy=lambda p: p | {"max_actions_per_hour": 2})
    assert submit(auto, "c13-a", advice(SELFPLAY, adjust("games", 100, 200)))["decision"] == "proceed"
    record = submit(auto, "c13-b", advice(SELFPLAY))
    assert "2 autonomous action(s) in the last hour plus 1 proposed" in record["reasons"][0]
    assert starts(tmp_path) == ["selfplay"]


def test_a_request_handled_again_after_a_restart_runs_nothing_twice(tmp_path: Path) -> None:
    auto, _ = setup(tmp_path, policy=lambda p: p | {"max_actions_per_hour": 2})
    body = advice(adjust("games", 100, 300), SELFPLAY)
    first = submit(auto, "c13-again", body)
    again = submit(auto, "c13-again", body)  # its own two actions do not count against it, nor its stale `current`
    assert first["decision"] == again["decision"] == "proceed"
    assert starts(tmp_path) == ["selfplay"]
    assert again["actions"][1]["runs"][0]["replayed"] is True


def test_an_action_that_does_not_proceed_stops_the_plan(tmp_path: Path) -> None:
    auto, _ = setup(tmp_path, {"selfplay.json": ["escalate"]})
    record = submit(auto, "c13-stop", advice(SELFPLAY, LOOP))
    assert record["decision"] == "escalate" and "action 1 (run_selfplay)" in record["reasons"][0]
    assert starts(tmp_path) == ["selfplay"]
    written = escalation(auto, "c13-stop")
    assert written["executed"] is True and written["trace"]["actions"][0]["runs"][0]["job"]["exit_code"] == 0


def test_no_action_proceeds_without_running_anything(tmp_path: Path) -> None:
    auto, events = setup(tmp_path)
    record = submit(auto, "c13-none", advice({"action": "no_action", "reason": "healthy"}))
    assert record["decision"] == "proceed" and events == [] and starts(tmp_path) == []


def test_direct_run_selfplay_uses_its_parameters_for_this_run_only(tmp_path: Path) -> None:
    auto, _ = setup(tmp_path)
    request = RunSelfplayRequest.model_validate({"type": "run_selfplay", "id": "sp-1", "parameters": {"games": 400}})
    ctx = HandlerContext(settings=auto.settings, judge=auto.judge, request_id="sp-1")
    record = handle_selfplay(request, ctx, auto)
    assert record["decision"] == "proceed" and record["actions"][0]["runs"][0]["parameters"]["games"] == 400
    assert auto.state.snapshot()["values"] == {}


def test_direct_requests_are_held_to_the_same_policy(tmp_path: Path) -> None:
    auto, _ = setup(tmp_path)
    bad = {"type": "run_learning_loop", "id": "ll-1", "parameters": {"learning_rate": 0.1, "tag": "a|b"}}
    ctx = HandlerContext(settings=auto.settings, judge=auto.judge, request_id="ll-1")
    record = handle_loop(RunLearningLoopRequest.model_validate(bad), ctx, auto)
    assert record["decision"] == "escalate"
    assert any("'tag': not a parameter of the requested job(s)" in r for r in record["reasons"])
    assert starts(tmp_path) == []


def test_the_three_request_types_are_registered() -> None:
    assert {"chapter_13", "run_selfplay", "run_learning_loop"} <= set(registry().specs)


@pytest.mark.parametrize(
    "name", ["chapter_13.json", "chapter_13_selfplay.json", "run_selfplay.json", "run_learning_loop.json"]
)
def test_example_requests_are_valid_and_within_the_shipped_policy(name: str) -> None:
    """Within every bound of the shipped policy; the only thing they wait for is the person its
    ``approval_required`` asks for (as the pipeline's v1 policy does)."""
    from watcher.autonomy.policy import PlanContext, Policy, Proposal

    settings = load_settings(REPO / "config", root=REPO)
    file = REPO / "examples" / "requests" / name
    request = parse_request(file.read_bytes(), file, settings, registry())
    cfg = settings.watcher
    policy = Policy(cfg.policy, cfg.jobs, cfg.learning_loop, frozenset(cfg.steps))
    model: Any = request.model
    if request.type == "chapter_13":
        proposals = [Proposal(**a.model_dump()) for a in model.advice.actions]
        context = PlanContext(policy.defaults(), 0, model.advice.confidence, model.advice.risk)
    else:
        proposals = [Proposal(request.type)]
        context = PlanContext(policy.defaults(), 0, model.confidence, model.risk, overrides=model.parameters)
    verdict = policy.check_plan(proposals, context)
    assert verdict.reasons and all("policy.approval_required" in reason for reason in verdict.reasons)
    approved = policy.check_plan(proposals, dataclasses.replace(context, approved_by="a person"))
    assert approved.approved, approved.reasons


FIRST_DAEMON = """
import sys
from pathlib import Path
sys.path.insert(0, {repo!r})
from handlers.chapter_13 import Chapter13Request, process_chapter_13_request
from watcher.requests.contract import HandlerContext
from tests.support.jobs.harness import FakeAdjuster, FakeJudge, autonomy
from watcher.config import load_settings
settings = load_settings(Path({config!r}), root=Path({root!r}))
auto = autonomy(settings, FakeJudge([]), FakeAdjuster())
request = Chapter13Request.model_validate_json({request!r})
process_chapter_13_request(request, HandlerContext(settings, auto.judge, request.id or ""), auto)
"""


def test_a_restart_during_a_running_job_does_not_start_it_again(tmp_path: Path) -> None:
    release = tmp_path / "release"
    hold = ("--hold-until", str(release))
    auto, _ = setup(tmp_path, jobs=lambda jobs: jobs | {"selfplay": jobs["selfplay"] | {
        "argv": [*jobs["selfplay"]["argv"], *hold]}})  # fmt: skip
    body = advice(adjust("games", 100, 300), SELFPLAY, LOOP)
    request = Chapter13Request.model_validate({"type": "chapter_13", "id": "c13-restart", "advice": body})
    script = FIRST_DAEMON.format(repo=str(REPO), config=str(auto.settings.config_dir), root=str(tmp_path),
                                 request=request.model_dump_json())  # fmt: skip
    first = subprocess.Popen([sys.executable, "-c", script], start_new_session=True)
    try:
        assert wait_until(lambda: starts(tmp_path) == ["selfplay"], timeout=30)
        os.kill(first.pid, signal.SIGKILL)  # the daemon dies mid-job; the job, in its own session, runs on
        first.wait()
        ctx = HandlerContext(settings=auto.settings, judge=auto.judge, request_id="c13-restart")
        finished = run_until_waiting_then_release(lambda: process_chapter_13_request(request, ctx, auto), release)
        [record] = finished
        assert record["decision"] == "proceed", record.get("reasoning")
        assert starts(tmp_path) == ["selfplay", "scoring", "meta"], "a job was started a second time"
        assert record["actions"][1]["runs"][0]["job"]["status"] == "adopted"
        assert auto.state.snapshot()["plans"]["c13-restart"]["actions"] == ["adjust_parameter", "run_selfplay",
                                                                             "run_learning_loop"]  # fmt: skip
    finally:
        release.touch()  # whatever failed, the held job ends
        if first.poll() is None:
            first.kill()
            first.wait()

"""Requests in the pipeline's own layout (``request_type``), written as its code writes them: open + json.dump,
slowly, no rename. Each is decided once, under the same policy, with the right jobs and a whole trace."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.support.helpers import wait_until
from tests.support.jobs.harness import POLICY, FakeJudge, make_settings, starts
from tests.support.pipeline_files import (
    daemon,
    decision,
    log_lines,
    loop_steps,
    selfplay_request,
    wire_autonomy,
    writing,
)
from watcher.config import Settings

pytestmark = pytest.mark.timeout(120)


def settings_for(tmp_path: Path, policy_extra: dict[str, Any] | None = None, **extra: Any) -> Settings:
    def selfplay(jobs: dict[str, Any]) -> dict[str, Any]:
        job = jobs["selfplay"]
        slot = {"episodes": {"type": "int", "default": 5, "minimum": 1, "maximum": 50}}
        argv = [*job["argv"], "--set", "episodes={episodes}"]
        return jobs | {"selfplay": job | {"argv": argv, "parameters": job["parameters"] | slot}}

    policy = POLICY | {"parameters": POLICY["parameters"] | {"episodes": {"minimum": 1, "maximum": 50}}}
    policy |= policy_extra or {}

    def loop(scenario: dict[str, Any]) -> dict[str, Any]:
        argv = scenario["steps"][0]["argv"]
        return loop_steps(tmp_path, int(argv[argv.index("--port") + 1]))

    return make_settings(
        tmp_path,
        jobs=selfplay,
        policy=policy,
        learning_loop=loop,
        pipeline=lambda p: p | {"episodes_parameter": "episodes"},
        **extra,
    )


def spool(settings: Settings) -> Path:
    return settings.path(settings.watcher.folders.requests)


def run_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: dict[str, Any], name: str) -> dict[str, Any]:
    settings = settings_for(tmp_path)
    (tmp_path / "survivors_with_scores.json").write_text("[]")
    judge = FakeJudge([])
    wire_autonomy(monkeypatch, judge)
    with daemon(settings, judge), writing(spool(settings) / f"{name}.json", body):
        record = decision(settings, name)
        done = settings.path(settings.watcher.folders.done)
        assert wait_until((done / f"{name}.json").exists, timeout=10)
    # The survivors file is step 3's output in the pipeline's layout: the daemon judges it too, under its own id.
    ids = [line["request_id"] for line in log_lines(settings)]
    assert ids.count(name) == 1 and len(ids) == len(set(ids)), "decided once, logged once"
    assert not list(settings.path(settings.watcher.folders.rejected).iterdir())
    return record


def test_selfplay_retrain_as_the_triggers_write_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    body = selfplay_request(episodes=3)
    record = run_one(tmp_path, monkeypatch, body, "selfplay_20260130_021543")
    assert (record["request_type"], record["kind"], record["decision"]) == ("selfplay_retrain", "plan", "proceed")
    assert record["pipeline_request"]["requested_by"] == "chapter_13_triggers"
    assert record["policy"]["approved"] is True
    [run] = record["actions"][0]["runs"]
    assert run["parameters"]["episodes"] == 3 and run["job"]["exit_code"] == 0
    assert run["judgement"]["decision"] == "proceed" and run["judgement"]["step"] == "5"
    assert starts(tmp_path) == ["selfplay"]


def test_selfplay_retrain_defaults_to_five_episodes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    record = run_one(tmp_path, monkeypatch, selfplay_request("selfplay_20260130_030000"), "selfplay_20260130_030000")
    assert record["actions"][0]["runs"][0]["parameters"]["episodes"] == 5


@pytest.mark.parametrize(
    ("scope", "expected"),
    [("steps_3_5_6", ["s3", "s5", "s6"]), ("steps_5_6", ["s5", "s6"]), ("step_6_only", ["s6"]),
     ("full", ["s1", "s2", "s3", "s4", "s5", "s6"])],
)  # fmt: skip
def test_learning_loop_runs_exactly_the_scope(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, scope: str, expected: list[str]
) -> None:
    body = selfplay_request("learning_20260203_100000", scope=scope) | {"request_type": "learning_loop"}
    record = run_one(tmp_path, monkeypatch, body, "learning_20260203_100000")
    assert record["decision"] == "proceed", record.get("reasoning")
    assert starts(tmp_path) == expected
    assert [run["name"] for run in record["actions"][0]["runs"]] == expected
    assert all(run["judgement"]["decision"] == "proceed" for run in record["actions"][0]["runs"])


def test_pipeline_rerun_runs_every_step(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    body = selfplay_request("rerun_20260203_100000") | {"request_type": "pipeline_rerun"}
    record = run_one(tmp_path, monkeypatch, body, "rerun_20260203_100000")
    assert record["decision"] == "proceed"
    assert starts(tmp_path) == ["s1", "s2", "s3", "s4", "s5", "s6"]


def test_the_same_policy_applies(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    body = selfplay_request("selfplay_20260130_040000", episodes=3)
    settings = settings_for(tmp_path, {"allowed_actions": ["no_action"]})
    (tmp_path / "survivors_with_scores.json").write_text("[]")
    judge = FakeJudge([])
    wire_autonomy(monkeypatch, judge)
    with daemon(settings, judge), writing(spool(settings) / "selfplay_20260130_040000.json", body):
        record = decision(settings, "selfplay_20260130_040000")
    assert record["decision"] == "escalate" and starts(tmp_path) == []
    assert any("not in policy.allowed_actions" in reason for reason in record["reasons"])
    escalation = json.loads(Path(record["escalation"]).read_text())
    assert escalation["resubmit"]["request_type"] == "selfplay_retrain"


def rejection(settings: Settings, name: str) -> dict[str, Any]:
    rejected = settings.path(settings.watcher.folders.rejected)
    file = rejected / f"{name}.error.json"
    assert wait_until(file.exists, timeout=30), f"{name} was not rejected"
    return json.loads(file.read_text())  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("change", "rule"),
    [
        ({"request_type": "selfplay"}, "unknown request_type 'selfplay'; known types: learning_loop, pipeline_rerun, "
                                       "selfplay_retrain"),
        ({"episodes": 51}, "does not match schema"),
        ({"survivors_file": "missing.json"}, "survivors_file 'missing.json' does not exist"),
        ({"survivors_file": "../outside.json"}, "leads outside"),
        ({"scope": "steps_x"}, "does not match schema"),
    ],
)  # fmt: skip
def test_bad_requests_are_refused_with_a_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, change: dict[str, Any], rule: str
) -> None:
    settings = settings_for(tmp_path)
    (tmp_path / "survivors_with_scores.json").write_text("[]")
    judge = FakeJudge([])
    wire_autonomy(monkeypatch, judge)
    body = selfplay_request("bad_1") | change
    with daemon(settings, judge), writing(spool(settings) / "bad_1.json", body):
        error = rejection(settings, "bad_1.json")
    assert rule in error["rule"], error
    assert starts(tmp_path) == []

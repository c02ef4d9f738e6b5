"""Parameter slots and the autonomy policy: what may run without a person, checked before anything runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from watcher.autonomy.policy import PlanContext, Policy, Proposal
from watcher.autonomy.state import AutonomyState, decide_plan
from watcher.config.jobs import JobConfig, ParameterSlot, PolicyConfig, check_value, render_argv
from watcher.errors import PolicyViolation

pytestmark = pytest.mark.timeout(30)


def slot(**fields: Any) -> ParameterSlot:
    return ParameterSlot.model_validate({"type": "str", "default": "x", **fields})


@pytest.mark.parametrize(
    "value",
    ["a;b", "$(id)", "`id`", "a|b", "a&b", "a b", "a>b", "x'y", 'x"y', "a\nb", "a\\b", "*", "~root", "{x}", "a\x00"],
)
def test_shell_metacharacters_are_refused(value: str) -> None:
    with pytest.raises(PolicyViolation, match="not allowed"):
        check_value("tag", value, slot())


@pytest.mark.parametrize("value", ["../etc", "a/../../b", "..", "a/.."])
def test_parent_segments_are_refused(value: str) -> None:
    with pytest.raises(PolicyViolation, match=r"'\.\.'"):
        check_value("tag", value, slot())


@pytest.mark.parametrize("value", ["-rf", "--config=x", "/etc/passwd", ""])
def test_option_like_absolute_and_empty_strings_are_refused(value: str) -> None:
    with pytest.raises(PolicyViolation, match="must not"):
        check_value("tag", value, slot())


@pytest.mark.parametrize("value", ["run-7", "a.b_c", "data/set1", "lr=0.1", "x..y"])
def test_plain_strings_pass(value: str) -> None:
    assert check_value("tag", value, slot()) == value


@pytest.mark.parametrize(
    ("kind", "value", "error"),
    [
        ("int", 11, "above the maximum"),
        ("int", -1, "below the minimum"),
        ("int", 2.5, "expects int"),
        ("int", True, "expects int"),
        ("int", "3", "expects int"),
        ("float", float("nan"), "finite"),
        ("float", "0.1", "expects float"),
        ("bool", 1, "expects a bool"),
    ],
)
def test_numbers_and_bools_are_checked_against_type_and_bounds(kind: str, value: Any, error: str) -> None:
    bounds = {"minimum": 0, "maximum": 10} if kind != "bool" else {}
    default = {"int": 1, "float": 1.0, "bool": False}[kind]
    with pytest.raises(PolicyViolation, match=error):
        check_value("n", value, ParameterSlot.model_validate({"type": kind, "default": default, **bounds}))


def test_integral_float_is_accepted_for_int_and_int_for_float() -> None:
    assert check_value("n", 4.0, ParameterSlot(type="int", default=1)) == 4
    assert check_value("x", 2, ParameterSlot(type="float", default=1.0)) == 2.0


def test_slot_with_default_outside_its_bounds_does_not_load() -> None:
    with pytest.raises(ValidationError, match="above the maximum"):
        ParameterSlot.model_validate({"type": "int", "default": 20, "maximum": 10})


def test_placeholders_fill_whole_arguments_and_parts_of_arguments() -> None:
    job = JobConfig.model_validate(
        {
            "argv": ["train", "--lr", "{lr}", "--name=run-{tag}", "{flag}"],
            "parameters": {
                "lr": {"type": "float", "default": 0.1},
                "tag": {"type": "str", "default": "a"},
                "flag": {"type": "bool", "default": False},
            },
            "output": "o.json",
            "judge_step": "1",
        }
    )
    assert render_argv(job, {"lr": 0.05, "tag": "b7"}) == ["train", "--lr", "0.05", "--name=run-b7", "false"]
    with pytest.raises(PolicyViolation, match="not allowed"):
        render_argv(job, {"tag": "b; rm -rf ~"})


def test_an_undeclared_placeholder_does_not_load() -> None:
    with pytest.raises(ValidationError, match=r"undeclared parameter\(s\) \['lr'\]"):
        JobConfig.model_validate({"argv": ["train", "{lr}"], "output": "o.json", "judge_step": "1"})


# ---------------------------------------------------------------------------------------------------------------
# Plans
# ---------------------------------------------------------------------------------------------------------------


def policy(**fields: Any) -> Policy:
    from watcher.config.jobs import JobsConfig, LearningLoopConfig

    job = {
        "argv": ["sp", "{games}", "{tag}"],
        "parameters": {"games": {"type": "int", "default": 100, "minimum": 1, "maximum": 10000},
                       "tag": {"type": "str", "default": "a"}},
        "output": "o.json",
        "judge_step": "1",
    }  # fmt: skip
    config = PolicyConfig.model_validate(
        {"parameters": {"games": {"minimum": 10, "maximum": 1000, "max_change": 300}, "tag": {}}, **fields}
    )
    jobs = JobsConfig.model_validate({"selfplay": job})
    return Policy(config, jobs, LearningLoopConfig(), frozenset({"1"}))


def ctx(**fields: Any) -> PlanContext:
    return PlanContext(**{"values": {"games": 100, "tag": "a"}, "recent_actions": 0, **fields})


def adjust(name: str, current: Any, proposed: Any) -> Proposal:
    return Proposal("adjust_parameter", "because", name, current, proposed)


def test_a_plan_within_policy_is_approved() -> None:
    verdict = policy().check_plan([adjust("games", 100, 300), Proposal("run_selfplay")], ctx(confidence=0.9))
    assert verdict.approved, verdict.reasons


@pytest.mark.parametrize(
    ("proposal", "context", "reason"),
    [
        (adjust("games", 100, 20000), {}, "above the maximum 10000"),
        (adjust("games", 100, 1001), {}, "above the policy maximum 1000"),
        (adjust("games", 100, 450), {}, "larger than the policy max_change 300"),
        (adjust("games", 90, 120), {}, "stale diagnostics"),
        (adjust("epochs", 1, 2), {}, "no configured job declares it"),
        (adjust("tag", "a", "x;reboot"), {}, "not allowed"),
        (adjust("tag", "a", "../../etc"), {}, "'..' path segments"),
        (Proposal("run_learning_loop"), {}, "no learning loop is configured"),
        (Proposal("run_selfplay"), {"confidence": 0.3}, "confidence 0.3 is below the policy minimum 0.7"),
        (Proposal("run_selfplay"), {"risk": "high"}, "risk 'high' is above the policy maximum 'medium'"),
        (Proposal("run_selfplay"), {"recent_actions": 4}, "4 autonomous action(s) in the last hour plus 1"),
    ],
)
def test_each_rule_denies_with_its_reason(proposal: Proposal, context: dict[str, Any], reason: str) -> None:
    verdict = policy().check_plan([proposal, Proposal("no_action")], ctx(**context))
    assert not verdict.approved
    assert any(reason in line for line in verdict.reasons), verdict.reasons


def test_an_action_outside_allowed_actions_is_denied() -> None:
    verdict = policy(allowed_actions=["no_action", "adjust_parameter"]).check_plan([Proposal("run_selfplay")], ctx())
    assert verdict.reasons == ["proposal 1 (run_selfplay): action 'run_selfplay' is not in policy.allowed_actions"]


def test_a_parameter_not_in_policy_needs_a_person() -> None:
    p = policy(parameters={"games": {"maximum": 1000}})
    with pytest.raises(PolicyViolation, match=r"not in policy\.parameters"):
        p.check_change("tag", "b", {"tag": "a"})


def test_no_action_does_not_count_against_the_hourly_limit() -> None:
    assert policy().check_plan([Proposal("no_action")], ctx(recent_actions=4)).approved


def test_overrides_of_a_direct_request_must_be_slots_of_its_job_and_within_policy() -> None:
    p = policy()
    assert p.check_plan([Proposal("run_selfplay")], ctx(overrides={"games": 200})).approved
    denied = p.check_plan([Proposal("run_selfplay")], ctx(overrides={"games": 2000, "lr": 1}))
    assert any("above the policy maximum" in r for r in denied.reasons)
    assert any("'lr': not a parameter of the requested job(s)" in r for r in denied.reasons)


# ---------------------------------------------------------------------------------------------------------------
# Persisted state
# ---------------------------------------------------------------------------------------------------------------


def test_the_hourly_limit_counts_from_the_persisted_history(tmp_path: Path) -> None:
    now = [1_000_000.0]
    state = AutonomyState(tmp_path, {"games": 100}, clock=lambda: now[0])
    p = policy(max_actions_per_hour=3)

    def plan(rid: str) -> dict[str, Any]:
        return decide_plan(p, state, rid, [Proposal("run_selfplay")] * 2, PlanContext)

    assert plan("r1")["approved"]
    # A new state object (a restarted daemon) reads the same history.
    state = AutonomyState(tmp_path, {"games": 100}, clock=lambda: now[0])
    second = plan("r2")
    assert not second["approved"]
    assert "2 autonomous action(s) in the last hour plus 2 proposed" in second["reasons"][0]
    now[0] += 3601
    assert plan("r3")["approved"]


def test_a_plan_is_judged_once_and_replayed_for_the_same_request(tmp_path: Path) -> None:
    state = AutonomyState(tmp_path, {"games": 100})
    p = policy(max_actions_per_hour=1)
    first = decide_plan(p, state, "r1", [Proposal("run_selfplay")], PlanContext)
    again = decide_plan(p, state, "r1", [Proposal("run_selfplay")], PlanContext)
    assert first["approved"] and again == first  # its own recorded action does not count against it


def test_an_unreadable_state_refuses_to_act(tmp_path: Path) -> None:
    (tmp_path / "autonomy.json").write_text("{broken")
    state = AutonomyState(tmp_path, {})
    with pytest.raises(PolicyViolation, match="unreadable autonomy state"):
        decide_plan(policy(), state, "r1", [Proposal("no_action")], PlanContext)
    assert (tmp_path / "autonomy.json").read_text() == "{broken"  # left for a person, not overwritten

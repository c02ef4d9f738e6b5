"""The policy: when the model is asked, and how its answer is bounded by the checks and the confidence floor."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from watcher.config import Check, StepConfig
from watcher.judging.checks import CheckReport, run_checks
from watcher.judging.verdicts import DECISIONS, combine, plan

pytestmark = pytest.mark.timeout(30)

CHECKS = (
    Check(path="score", op=">=", value=0.6, severity="hard", message="score too low"),
    Check(path="gap", op="<=", value=0.05, severity="hard", message="gap too wide"),
    Check(path="spread", op="<=", value=0.1, severity="soft", message="noisy"),
)
CLEAR = {"score": 0.8, "gap": 0.01, "spread": 0.02}
NARROW = {"score": 0.62, "gap": 0.01, "spread": 0.02}
SOFT_FAIL = {"score": 0.8, "gap": 0.01, "spread": 0.3}
HARD_FAIL = {"score": 0.8, "gap": 0.2, "spread": 0.02}
MISSING_HARD = {"gap": 0.01, "spread": 0.02}


def step(**overrides: Any) -> StepConfig:
    base: dict[str, Any] = {"name": "s", "output_glob": "x.json", "schema_file": "s.json", "ask_model": "borderline"}
    return StepConfig.model_validate({**base, **overrides})


def report(document: dict[str, Any]) -> CheckReport:
    return run_checks(CHECKS, document)


# --- plan ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "document", "ask", "decision", "rule"),
    [
        ("always", CLEAR, True, None, "ask_model_always"),
        ("always", HARD_FAIL, True, None, "ask_model_always"),
        ("borderline", CLEAR, False, "proceed", "all_checks_clear"),
        ("borderline", NARROW, True, None, "borderline_check:score"),
        ("borderline", SOFT_FAIL, True, None, "soft_check_failed:spread"),
        ("borderline", HARD_FAIL, False, "retry", "hard_check_failed:gap"),
        ("borderline", MISSING_HARD, False, "retry", "hard_check_failed:score"),
        ("never", CLEAR, False, "proceed", "all_checks_passed"),
        ("never", NARROW, False, "proceed", "all_checks_passed"),
        ("never", SOFT_FAIL, False, "escalate", "soft_check_failed:spread"),
        ("never", HARD_FAIL, False, "retry", "hard_check_failed:gap"),
    ],
)
def test_plan(mode: str, document: dict[str, Any], ask: bool, decision: str | None, rule: str) -> None:
    planned = plan(step(ask_model=mode), report(document))
    assert (planned.ask_model, planned.decision, planned.rule) == (ask, decision, rule)


def test_borderline_margin_is_configurable() -> None:
    assert plan(step(borderline_margin=0.0), report(NARROW)).decision == "proceed"
    assert plan(step(borderline_margin=0.5), report(CLEAR)).ask_model


def test_hard_failure_settles_the_configured_decision() -> None:
    assert plan(step(on_hard_failure="escalate"), report(HARD_FAIL)).decision == "escalate"
    assert plan(step(ask_model="never", on_hard_failure="escalate"), report(HARD_FAIL)).decision == "escalate"


def test_no_checks_never_settles_proceed() -> None:
    empty = run_checks((), CLEAR)
    assert plan(step(), empty).ask_model
    assert plan(step(ask_model="never"), empty).decision == "escalate"


# --- combine ---------------------------------------------------------------------------------------------------


def test_failed_hard_check_overrides_a_model_proceed() -> None:
    verdict = combine(step(on_hard_failure="escalate"), report(HARD_FAIL), "proceed", 0.95)
    assert verdict.decision == "escalate"
    assert verdict.overridden_by == "hard_check_failed:gap"
    assert verdict.rule == "hard_check_failed:gap"
    assert (verdict.decided_by, verdict.model_decision, verdict.model_confidence) == ("model", "proceed", 0.95)


def test_missing_hard_value_overrides_a_model_proceed() -> None:
    verdict = combine(step(), report(MISSING_HARD), "proceed", 0.99)
    assert (verdict.decision, verdict.overridden_by) == ("retry", "hard_check_failed:score")


def test_model_may_be_stricter_than_the_checks() -> None:
    verdict = combine(step(), report(CLEAR), "retry", 0.9)
    assert (verdict.decision, verdict.rule, verdict.overridden_by) == ("retry", "model", None)
    verdict = combine(step(on_hard_failure="retry"), report(HARD_FAIL), "escalate", 0.9)
    assert (verdict.decision, verdict.overridden_by) == ("escalate", None)


def test_soft_failure_leaves_the_model_answer_standing() -> None:
    verdict = combine(step(), report(SOFT_FAIL), "proceed", 0.9)
    assert (verdict.decision, verdict.overridden_by) == ("proceed", None)


@pytest.mark.parametrize(("answer", "confidence"), [("proceed", 0.59), ("retry", 0.2), ("proceed", None)])
def test_confidence_below_minimum_escalates(answer: str, confidence: float | None) -> None:
    verdict = combine(step(min_confidence=0.6), report(CLEAR), answer, confidence)
    assert (verdict.decision, verdict.overridden_by) == ("escalate", "min_confidence")


def test_confidence_at_minimum_stands() -> None:
    verdict = combine(step(min_confidence=0.6), report(CLEAR), "proceed", 0.6)
    assert (verdict.decision, verdict.overridden_by) == ("proceed", None)


def test_unknown_model_decision_escalates() -> None:
    verdict = combine(step(), report(CLEAR), "continue", 0.9)
    assert (verdict.decision, verdict.overridden_by) == ("escalate", "invalid_model_decision")


def test_without_model_the_plan_settles() -> None:
    clear = combine(step(), report(CLEAR), None, None)
    assert (clear.decision, clear.decided_by, clear.rule, clear.overridden_by) == (
        "proceed",
        "checks",
        "all_checks_clear",
        None,
    )
    hard = combine(step(on_hard_failure="escalate"), report(HARD_FAIL), None, None)
    assert (hard.decision, hard.rule) == ("escalate", "hard_check_failed:gap")


def test_without_model_an_unsettled_output_escalates() -> None:
    verdict = combine(step(), report(NARROW), None, None)
    assert (verdict.decision, verdict.rule) == ("escalate", "no_model_answer")


def test_no_combination_of_answer_and_mode_lets_a_hard_failure_proceed() -> None:
    answers = [*DECISIONS, "nonsense", None]
    confidences = [None, 0.0, 0.5, 1.0]
    modes = ["always", "borderline", "never"]
    for document in (HARD_FAIL, MISSING_HARD):
        for answer, confidence, mode, fallback in itertools.product(answers, confidences, modes, ["retry", "escalate"]):
            cfg = step(ask_model=mode, on_hard_failure=fallback)
            verdict = combine(cfg, report(document), answer, confidence)
            assert verdict.decision != "proceed", (document, answer, confidence, mode)

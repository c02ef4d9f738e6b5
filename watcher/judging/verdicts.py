"""The policy that combines deterministic checks with the model's answer. Pure functions: no I/O, no model.

How a step output is judged (``watcher.evaluate`` drives it)::

    report  = checks.run_checks(settings.watcher.checks.get(step, ()), document)
    planned = judgement.plan(step_cfg, report)
    if planned.ask_model:
        answer  = <ask the model; the prompt carries report.lines()>
        verdict = judgement.combine(step_cfg, report, answer.decision, answer.confidence)
    else:
        verdict = judgement.combine(step_cfg, report, None, None)   # parse_method: checks_only
    record  = {..., "checks": report, "verdict": verdict, ...}

:func:`plan` decides whether the model is needed, per the step's ``ask_model``:

* ``always``: every output goes to the model.
* ``borderline``: a failed hard check settles ``on_hard_failure``; every check passing by at least
  ``borderline_margin`` settles ``proceed``; anything else (a soft failure, a narrow pass, no checks) goes to the
  model.
* ``never``: the checks alone: a failed hard check -> ``on_hard_failure``, a failed soft check -> ``escalate``
  (nobody else can weigh it), all passing -> ``proceed``, no checks at all -> ``escalate``.

:func:`combine` gives the final :class:`Verdict`. Without a model answer it is the plan's settlement (or
``escalate`` when the plan needed the model). With one, in this order: an answer that is not a known decision ->
``escalate``; a failed hard check turns ``proceed`` into ``on_hard_failure``; a confidence below ``min_confidence``
-> ``escalate``. A failed hard check therefore never ends as ``proceed``. ``overridden_by`` names the rule whenever
the model's answer was changed; ``rule`` always names what produced the final decision.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from watcher.config import StepConfig
from watcher.judging.checks import CheckReport, CheckResult

Decision = Literal["proceed", "retry", "escalate"]
DECISIONS: tuple[Decision, ...] = ("proceed", "retry", "escalate")

RULE_MODEL = "model"
RULE_ALWAYS = "ask_model_always"
RULE_ALL_CLEAR = "all_checks_clear"
RULE_ALL_PASSED = "all_checks_passed"
RULE_NO_CHECKS = "no_checks"
RULE_NO_MODEL_ANSWER = "no_model_answer"
RULE_INVALID_ANSWER = "invalid_model_decision"
RULE_MIN_CONFIDENCE = "min_confidence"


class Plan(BaseModel):
    """Whether the model must be asked; if not, the decision the checks settled and the rule that settled it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    ask_model: bool
    decision: Decision | None
    rule: str


class Verdict(BaseModel):
    """The final decision, what the model said, and the rule that produced or changed the decision."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    decision: Decision
    decided_by: Literal["checks", "model"]
    rule: str
    overridden_by: str | None
    model_decision: str | None
    model_confidence: float | None


def hard_failure_rule(report: CheckReport) -> str | None:
    failed = report.hard_failed
    return f"hard_check_failed:{failed[0]}" if failed else None


def plan(step_cfg: StepConfig, report: CheckReport) -> Plan:
    """Ask the model, or settle from the checks alone, per ``step_cfg.ask_model``."""
    if step_cfg.ask_model == "always":
        return Plan(ask_model=True, decision=None, rule=RULE_ALWAYS)
    hard = hard_failure_rule(report)
    if hard is not None:
        return Plan(ask_model=False, decision=step_cfg.on_hard_failure, rule=hard)
    if step_cfg.ask_model == "never":
        return settle_without_model(report)
    unsettled = unclear_rule(step_cfg, report)
    if unsettled is not None:
        return Plan(ask_model=True, decision=None, rule=unsettled)
    return Plan(ask_model=False, decision="proceed", rule=RULE_ALL_CLEAR)


def unclear_rule(step_cfg: StepConfig, report: CheckReport) -> str | None:
    """Why the checks cannot settle a ``borderline`` step on their own; None when every check passes clearly."""
    if not report.results:
        return RULE_NO_CHECKS
    for result in report.results:
        if not result.passed:
            return f"soft_check_failed:{result.path}"
        if narrow(step_cfg, result):
            return f"borderline_check:{result.path}"
    return None


def narrow(step_cfg: StepConfig, result: CheckResult) -> bool:
    """A pass by less than the step's ``borderline_margin``."""
    return result.passed and result.margin is not None and result.margin < step_cfg.borderline_margin


class Signals(BaseModel):
    """The check results sorted by what they say about the output, for the model to weigh (paths)."""

    model_config = ConfigDict(frozen=True)

    hard_failed: tuple[str, ...]
    soft_failed: tuple[str, ...]
    narrow: tuple[str, ...]  # passed within the margin
    clear: int  # passed by the margin or more


def signals(step_cfg: StepConfig, report: CheckReport) -> Signals:
    results = report.results

    def named(result: CheckResult) -> str:
        return f"{result.file}: {result.path}" if result.file else result.path

    return Signals(
        hard_failed=tuple(named(r) for r in results if not r.passed and r.severity == "hard"),
        soft_failed=tuple(named(r) for r in results if not r.passed and r.severity == "soft"),
        narrow=tuple(named(r) for r in results if narrow(step_cfg, r)),
        clear=sum(r.passed and not narrow(step_cfg, r) for r in results),
    )


def settle_without_model(report: CheckReport) -> Plan:
    """``never`` mode once no hard check failed: a soft failure or an empty check list goes to a person."""
    if not report.results:
        return Plan(ask_model=False, decision="escalate", rule=RULE_NO_CHECKS)
    soft = report.soft_failed
    if soft:
        return Plan(ask_model=False, decision="escalate", rule=f"soft_check_failed:{soft[0]}")
    return Plan(ask_model=False, decision="proceed", rule=RULE_ALL_PASSED)


def combine(
    step_cfg: StepConfig,
    report: CheckReport,
    model_decision: str | None,
    model_confidence: float | None,
) -> Verdict:
    """The final decision from the checks and, when the model ran, its answer."""
    if model_decision is None:
        return without_model(step_cfg, report)
    decision, rule = model_answer(model_decision)
    hard = hard_failure_rule(report)
    if decision == "proceed" and hard is not None:
        decision, rule = step_cfg.on_hard_failure, hard
    elif decision != "escalate" and below(model_confidence, step_cfg.min_confidence):
        decision, rule = "escalate", RULE_MIN_CONFIDENCE
    return Verdict(
        decision=decision,
        decided_by="model",
        rule=rule,
        overridden_by=None if rule == RULE_MODEL else rule,
        model_decision=model_decision,
        model_confidence=model_confidence,
    )


def without_model(step_cfg: StepConfig, report: CheckReport) -> Verdict:
    planned = plan(step_cfg, report)
    if planned.ask_model or planned.decision is None:
        decision: Decision = "escalate"
        rule = RULE_NO_MODEL_ANSWER
    else:
        decision, rule = planned.decision, planned.rule
    return Verdict(
        decision=decision,
        decided_by="checks",
        rule=rule,
        overridden_by=None,
        model_decision=None,
        model_confidence=None,
    )


def model_answer(model_decision: str) -> tuple[Decision, str]:
    for known in DECISIONS:
        if model_decision == known:
            return known, RULE_MODEL
    return "escalate", RULE_INVALID_ANSWER


def below(confidence: float | None, minimum: float) -> bool:
    """A missing confidence counts as none at all, so any positive minimum escalates it."""
    return (confidence if confidence is not None else 0.0) < minimum

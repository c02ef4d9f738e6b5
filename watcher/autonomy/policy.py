"""The autonomy policy: what the watcher may do without a person, checked before anything runs.

A plan (the proposals of one request) is approved whole or not at all: running half of a plan is running a plan
nobody proposed. Every proposal gets a verdict with its reasons; a denied plan becomes an escalation file in
``folders.escalations`` and nothing executes. The actions-per-hour limit is counted from the history that
``watcher.autonomy`` persists in ``folders.state``, so a restarted daemon does not get a fresh allowance.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from watcher.autonomy.person import person_reasons
from watcher.config.jobs import (
    Action,
    JobConfig,
    JobsConfig,
    LearningLoopConfig,
    LoopStepConfig,
    ParameterPolicy,
    ParameterSlot,
    PolicyConfig,
    Risk,
    check_value,
)
from watcher.errors import PolicyViolation

Value = bool | int | float | str


@dataclass(frozen=True)
class Proposal:
    """One proposed action, whatever its source (the advisor, a direct request, a retry adjustment)."""

    action: Action
    reason: str = ""
    parameter: str | None = None
    current: Value | None = None
    proposed: Value | None = None
    steps: tuple[str, ...] | None = None  # run_learning_loop: the loop steps (by judge_step) to run; None: all
    reset: bool = False  # a full reset of the pipeline (policy.approval_required.regime_reset)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"action": self.action, "reason": self.reason}
        if self.action == "adjust_parameter":
            out |= {"parameter": self.parameter, "current": self.current, "proposed": self.proposed}
        if self.steps is not None:
            out["steps"] = list(self.steps)
        if self.reset:
            out["reset"] = True
        return out


@dataclass(frozen=True)
class ProposalVerdict:
    proposal: Proposal
    reasons: tuple[str, ...] = ()

    @property
    def approved(self) -> bool:
        return not self.reasons

    def as_dict(self) -> dict[str, Any]:
        return {
            "proposal": self.proposal.as_dict(),
            "verdict": "approved" if self.approved else "denied",
            "reasons": list(self.reasons),
        }


@dataclass(frozen=True)
class PlanVerdict:
    verdicts: tuple[ProposalVerdict, ...]
    plan_reasons: tuple[str, ...] = ()

    @property
    def approved(self) -> bool:
        return not self.plan_reasons and all(v.approved for v in self.verdicts)

    @property
    def reasons(self) -> list[str]:
        out = list(self.plan_reasons)
        for index, verdict in enumerate(self.verdicts):
            out += [f"proposal {index + 1} ({verdict.proposal.action}): {r}" for r in verdict.reasons]
        return out

    def as_dict(self) -> dict[str, Any]:
        return {
            "approved": self.approved,
            "plan_reasons": list(self.plan_reasons),
            "proposals": [v.as_dict() for v in self.verdicts],
        }


@dataclass(frozen=True)
class PlanContext:
    """Facts a plan is judged against: the values in force and how many actions the last hour saw."""

    values: Mapping[str, Value]
    recent_actions: int
    confidence: float | None = None
    risk: Risk | None = None
    check_stale_current: bool = True
    overrides: Mapping[str, object] = field(default_factory=dict)  # values a direct request asks to run with
    approved_by: str | None = None  # a person approved this plan: the rules of watcher.autonomy.person are lifted
    person_requested: str | None = None  # the proposer itself asks for a person (the reason)
    plans_since_retrain: int | None = None  # requests judged since the last approved retrain (cooldown)


@dataclass
class Policy:
    """The policy section plus the parameter slots the configured jobs declare."""

    config: PolicyConfig
    jobs: JobsConfig
    loop: LearningLoopConfig
    steps: frozenset[str] = frozenset()  # configured pipeline steps; empty: not checked
    slots: dict[str, list[ParameterSlot]] = field(init=False)

    def __post_init__(self) -> None:
        self.slots = {}
        for job in self.all_jobs():
            for name, slot in job.parameters.items():
                self.slots.setdefault(name, []).append(slot)

    def all_jobs(self) -> Iterator[JobConfig]:
        if self.jobs.selfplay is not None:
            yield self.jobs.selfplay
        yield from self.loop.steps

    def defaults(self) -> dict[str, Value]:
        """Each parameter's default, from the first job that declares it."""
        return {name: slots[0].default for name, slots in self.slots.items()}

    def check_plan(self, proposals: Sequence[Proposal], ctx: PlanContext) -> PlanVerdict:
        plan_reasons = self._plan_reasons(proposals, ctx)
        verdicts = tuple(ProposalVerdict(p, tuple(self._proposal_reasons(p, ctx))) for p in proposals)
        return PlanVerdict(verdicts, tuple(plan_reasons))

    def _plan_reasons(self, proposals: Sequence[Proposal], ctx: PlanContext) -> list[str]:
        return person_reasons(self.config, proposals, ctx) + self._override_reasons(proposals, ctx)

    def _override_reasons(self, proposals: Sequence[Proposal], ctx: PlanContext) -> list[str]:
        declared = {name for p in proposals for job in self.jobs_of(p.action, p.steps) for name in job.parameters}
        reasons = []
        for name, value in ctx.overrides.items():
            if name not in declared:
                reasons.append(f"parameter {name!r}: not a parameter of the requested job(s)")
                continue
            try:
                self.check_change(name, value, ctx.values)
            except PolicyViolation as exc:
                reasons.append(str(exc))
        return reasons

    def jobs_of(self, action: Action, steps: Sequence[str] | None = None) -> list[JobConfig]:
        if action == "run_selfplay":
            return [self.jobs.selfplay] if self.jobs.selfplay is not None else []
        return list(self.loop_steps(steps)) if action == "run_learning_loop" else []

    def loop_steps(self, steps: Sequence[str] | None) -> list[LoopStepConfig]:
        """The loop steps to run, in loop order: all, or those whose ``judge_step`` is listed."""
        return [s for s in self.loop.steps if steps is None or s.judge_step in steps]

    def missing_steps(self, steps: Sequence[str] | None) -> list[str]:
        configured = {s.judge_step for s in self.loop.steps}
        return [] if steps is None else [step for step in steps if step not in configured]

    def normalized_overrides(self, overrides: Mapping[str, object], baseline: Mapping[str, Value]) -> dict[str, Value]:
        """Overrides of an approved plan, each in its slot's type."""
        return {name: self.check_change(name, value, baseline) for name, value in overrides.items()}

    def _proposal_reasons(self, proposal: Proposal, ctx: PlanContext) -> list[str]:
        if proposal.action not in self.config.allowed_actions and ctx.approved_by is None:
            return [f"action {proposal.action!r} is not in policy.allowed_actions"]
        if proposal.action == "adjust_parameter":
            return self._adjustment_reasons(proposal, ctx)
        missing = self.missing_steps(proposal.steps) if proposal.action == "run_learning_loop" else []
        if missing:
            return [f"no learning_loop step judges step(s) {', '.join(missing)}"]
        return self.config_problems(proposal.action)

    def config_problems(self, action: Action) -> list[str]:
        """Why the jobs of ``action`` cannot run as configured (none configured, an unknown judge step)."""
        if action == "run_selfplay":
            if self.jobs.selfplay is None:
                return ["no selfplay job is configured (jobs.selfplay)"]
            named = [("jobs.selfplay", self.jobs.selfplay)]
        elif action == "run_learning_loop":
            if not self.loop.steps:
                return ["no learning loop is configured (learning_loop.steps)"]
            named = [(f"learning_loop.steps[{i}]", step) for i, step in enumerate(self.loop.steps)]
        else:
            return []
        return [
            f"{key}.judge_step names step {job.judge_step!r}, which is not in steps"
            for key, job in named
            if self.steps and job.judge_step not in self.steps
        ]

    def _adjustment_reasons(self, proposal: Proposal, ctx: PlanContext) -> list[str]:
        if proposal.parameter is None or proposal.proposed is None:
            return ["adjust_parameter needs a parameter and a proposed value"]
        try:
            self.check_change(proposal.parameter, proposal.proposed, ctx.values)
        except PolicyViolation as exc:
            return [str(exc)]
        in_force = ctx.values.get(proposal.parameter)
        stale = not same_value(proposal.current, in_force)
        if ctx.check_stale_current and self.config.reject_stale_current and stale and ctx.approved_by is None:
            return [
                f"parameter {proposal.parameter!r}: proposal says current is {proposal.current!r} but "
                f"{in_force!r} is in force (stale diagnostics)"
            ]
        return []

    def check_change(self, name: str, proposed: object, baseline: Mapping[str, Value]) -> Value:
        """``proposed`` normalised, or PolicyViolation: unknown slot, slot bounds, policy bounds, change limit."""
        slots = self.slots.get(name)
        if not slots:
            raise PolicyViolation(f"parameter {name!r}: no configured job declares it")
        rule = self.config.parameters.get(name)
        if rule is None:
            raise PolicyViolation(f"parameter {name!r}: not in policy.parameters, so it needs a person")
        value = check_value(name, proposed, slots[0])
        for slot in slots[1:]:
            check_value(name, value, slot)
        check_policy_limits(name, value, rule, baseline.get(name))
        check_delta(name, value, baseline.get(name), self.config.max_parameter_delta)
        return value


def check_delta(name: str, value: Value, before: Value | None, ratio: float | None) -> None:
    """policy.max_parameter_delta: a hard bound on any numeric change, relative to the value in force."""
    numbers = (value, before)
    if ratio is None or any(isinstance(v, bool) or not isinstance(v, int | float) for v in numbers):
        return
    assert isinstance(value, int | float) and isinstance(before, int | float)
    if abs(value - before) > abs(before) * ratio * (1 + 1e-9):
        raise PolicyViolation(
            f"parameter {name!r}: change {before} -> {value} is more than policy.max_parameter_delta "
            f"({ratio:.0%}) of {before}"
        )


def check_policy_limits(name: str, value: Value, rule: ParameterPolicy, before: Value | None) -> None:
    if rule.choices is not None:
        text = ("true" if value else "false") if isinstance(value, bool) else str(value)
        if text not in rule.choices:
            raise PolicyViolation(f"parameter {name!r}: {text!r} is not in the policy choices {list(rule.choices)}")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return
    if rule.minimum is not None and value < rule.minimum:
        raise PolicyViolation(f"parameter {name!r}: {value} is below the policy minimum {rule.minimum}")
    if rule.maximum is not None and value > rule.maximum:
        raise PolicyViolation(f"parameter {name!r}: {value} is above the policy maximum {rule.maximum}")
    if isinstance(before, bool) or not isinstance(before, int | float):
        return
    change = abs(value - before)
    if rule.max_change is not None and change > rule.max_change * (1 + 1e-9):
        raise PolicyViolation(
            f"parameter {name!r}: change {before} -> {value} is larger than the policy max_change {rule.max_change}"
        )
    if rule.max_change_ratio is not None and change > abs(before) * rule.max_change_ratio * (1 + 1e-9):
        raise PolicyViolation(
            f"parameter {name!r}: change {before} -> {value} is more than {rule.max_change_ratio:.0%} of {before}"
        )


def same_value(a: object, b: object) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-12)
    return a == b

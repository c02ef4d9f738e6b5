"""``chapter_13``: the advisor's proposals, checked against the policy, dispatched in order, one trace.

    request -> proposals -> policy (before anything runs; the plan is recorded once, with its baseline values)
            denied   -> <folders.escalations>/<id>.json with the reasons; nothing executed
            approved -> each action in order: adjust_parameter (value in force), run_selfplay,
                        run_learning_loop, no_action; an action that does not end in proceed stops the plan
                        and is escalated with the trace so far
    -> one decision record: every proposal with its verdict, what ran, exit codes, the judgements

``execute_plan`` is shared with the direct ``run_selfplay`` and ``run_learning_loop`` requests.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from loguru import logger
from pydantic import Field

from watcher.autonomy.orchestrator import Autonomy, Orchestrator
from watcher.autonomy.policy import PlanContext, Proposal, Value
from watcher.autonomy.state import decide_plan, set_value, write_escalation
from watcher.config import Settings
from watcher.config.jobs import Risk
from watcher.errors import PolicyViolation
from watcher.judging.answers import AdjustParameterAction, Chapter13Advice, Chapter13Proposal
from watcher.requests.contract import HandlerContext, HandlerSpec
from watcher.requests.model import RequestBase
from watcher.requests.pipeline import PipelineRequest, scope_steps


class Chapter13Request(RequestBase):
    """Proposals of the Chapter 13 advisor (``watcher advise --submit`` writes one; so may any program)."""

    type: Literal["chapter_13"] = Field(description="Request type.")
    advice: Chapter13Advice | Chapter13Proposal = Field(
        description="The proposals: in the shape of the chapter_13 grammar's answers, or of the pipeline "
        "advisor's (chapter_13_proposal: recommended_action, retrain_scope, parameter_proposals, ...)."
    )
    source: str | None = Field(None, max_length=200, description="Who proposed it, e.g. `watcher advise`.")
    diagnostics_file: str | None = Field(
        None, max_length=4096, description="The diagnostics the advice was drawn from (for the record)."
    )
    diagnostics_sha256: str | None = Field(
        None, pattern=r"^[0-9a-f]{64}$", description="sha256 of that file (for the record)."
    )


def proposals_of(advice: Chapter13Advice | Chapter13Proposal) -> list[Proposal]:
    if isinstance(advice, Chapter13Proposal):
        return pipeline_proposals(advice)
    out = []
    for action in advice.actions:
        if isinstance(action, AdjustParameterAction):
            out.append(Proposal(action.action, action.reason, action.parameter, action.current, action.proposed))
        else:
            out.append(Proposal(action.action, action.reason))
    return out


def pipeline_proposals(advice: Chapter13Proposal) -> list[Proposal]:
    """The pipeline advisor's proposal as our actions: its parameter changes first, then what it recommends."""
    out = [Proposal("adjust_parameter", p.rationale, p.parameter, p.current_value, p.proposed_value)
           for p in advice.parameter_proposals]  # fmt: skip
    summary = advice.analysis_summary[:200]
    if advice.recommended_action == "RETRAIN":
        out.append(Proposal("run_learning_loop", summary, steps=scope_steps(advice.retrain_scope or "steps_3_5_6")))
    elif advice.recommended_action == "FULL_RESET":
        out.append(Proposal("run_learning_loop", summary, reset=True))
    return out or [Proposal("no_action", summary)]


def person_requested(advice: Chapter13Advice | Chapter13Proposal) -> str | None:
    """The proposer's own request for a person (pipeline shape: ESCALATE, or requires_human_review)."""
    if not isinstance(advice, Chapter13Proposal):
        return None
    if advice.recommended_action == "ESCALATE":
        return "the advisor recommends ESCALATE: a person must review"
    return "the advisor marked its proposal requires_human_review" if advice.requires_human_review else None


def check(request: Chapter13Request, settings: Settings, file: Path) -> None:
    """Nothing beyond the schema: every policy rule is checked when the request is handled, and escalated."""


def handle(request: Chapter13Request, ctx: HandlerContext) -> dict[str, Any]:
    return process_chapter_13_request(request, ctx)


def approved_by(ctx: HandlerContext) -> str | None:
    """Who approved this run, when a person did (``watcher approve``)."""
    return None if ctx.approval is None else str(ctx.approval.get("decided_by") or "a person")


def approval_head(ctx: HandlerContext) -> dict[str, Any]:
    return {} if ctx.approval is None else {"approval": dict(ctx.approval)}


def process_chapter_13_request(
    request: Chapter13Request, ctx: HandlerContext, autonomy: Autonomy | None = None
) -> dict[str, Any]:
    advice = request.advice
    resubmit = request.model_dump(mode="json", exclude_none=True)
    risk = advice.risk_level if isinstance(advice, Chapter13Proposal) else advice.risk
    plan_ctx = PlanInputs(advice.confidence, risk, approved_by=approved_by(ctx), resubmit=resubmit,
                          person_requested=person_requested(advice))  # fmt: skip
    head = {
        "kind": "plan",
        "request_type": "chapter_13",
        "requested_by": request.source,
        "advice": advice.model_dump(mode="json"),
        **approval_head(ctx),
    }
    head |= {"diagnostics_file": request.diagnostics_file, "diagnostics_sha256": request.diagnostics_sha256}
    autonomy = autonomy or Autonomy.create(ctx.settings, ctx.judge)
    return execute_plan(autonomy, ctx.request_id, proposals_of(advice), plan_ctx, head)


@dataclass(frozen=True)
class PlanInputs:
    """What a request states about itself (confidence, risk) and the parameter values it asks to run with."""

    confidence: float | None = None
    risk: Risk | None = None
    overrides: Mapping[str, Value] = field(default_factory=dict)
    check_stale_current: bool = True
    approved_by: str | None = None
    person_requested: str | None = None
    resubmit: Mapping[str, Any] | None = None  # the request as it can be validated again once a person approves

    def context(self, values: dict[str, Value], recent: int) -> PlanContext:
        return PlanContext(values, recent, self.confidence, self.risk, self.check_stale_current, self.overrides,
                           self.approved_by, self.person_requested)  # fmt: skip


def execute_plan(
    autonomy: Autonomy, request_id: str, proposals: Sequence[Proposal], inputs: PlanInputs, head: Mapping[str, Any]
) -> dict[str, Any]:
    """Check the plan, run it if approved, and return the decision record with the whole trace."""
    plan = decide_plan(autonomy.policy, autonomy.state, request_id, proposals, inputs.context)
    record: dict[str, Any] = {**head, "policy": plan["check"], "actions": []}
    if not plan["approved"]:
        return escalate(autonomy, request_id, record, plan["reasons"], executed=False, resubmit=inputs.resubmit)
    baseline: dict[str, Value] = dict(plan["baseline"])
    values = {**baseline, **autonomy.policy.normalized_overrides(inputs.overrides, baseline)}
    orchestrator = autonomy.orchestrator(request_id)
    for index, proposal in enumerate(proposals, 1):
        outcome = run_action(autonomy, orchestrator, proposal, values, baseline=baseline, tag=f"{request_id}.{index}")
        record["actions"].append(outcome)
        if outcome["decision"] != "proceed":
            reason = f"action {index} ({proposal.action}): {outcome.get('reason') or outcome['decision']}"
            return escalate(autonomy, request_id, record, [reason], executed=True, resubmit=inputs.resubmit)
    record |= {"decision": "proceed", "reasoning": f"{len(proposals)} approved action(s) ran and proceeded"}
    record["parameters_in_force"] = values
    return record


def run_action(
    autonomy: Autonomy,
    orchestrator: Orchestrator,
    proposal: Proposal,
    values: dict[str, Value],
    *,
    baseline: Mapping[str, Value],
    tag: str,
) -> dict[str, Any]:
    """One approved action; ``values`` is updated in place by an adjustment."""
    try:
        if proposal.action == "adjust_parameter":
            return adjust(autonomy, proposal, values, baseline)
        if proposal.action == "run_selfplay":
            return {**orchestrator.dispatch_selfplay(values, tag), "proposal_reason": proposal.reason}
        if proposal.action == "run_learning_loop":
            done = orchestrator.dispatch_learning_loop(values, tag, baseline, proposal.steps)
            return {**done, "proposal_reason": proposal.reason}
    except PolicyViolation as exc:
        # The plan passed, but the values no longer fit a job (e.g. the config changed since): a person decides.
        return {"action": proposal.action, "decision": "escalate", "reason": str(exc)}
    return {"action": "no_action", "decision": "proceed", "reason": proposal.reason}


def adjust(
    autonomy: Autonomy, proposal: Proposal, values: dict[str, Value], baseline: Mapping[str, Value]
) -> dict[str, Any]:
    name = proposal.parameter or ""
    value = autonomy.policy.check_change(name, proposal.proposed, baseline)
    before = values.get(name)
    set_value(autonomy.state, name, value)
    values[name] = value
    return {"action": "adjust_parameter", "decision": "proceed", "parameter": name, "before": before,
            "after": value, "reason": proposal.reason}  # fmt: skip


def escalate(
    autonomy: Autonomy,
    request_id: str,
    record: dict[str, Any],
    reasons: list[str],
    *,
    executed: bool,
    resubmit: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    summary = "; ".join(reasons)
    would_run = [p["proposal"] for p in record["policy"].get("proposals", [])]
    payload = {"request_type": record.get("request_type"), "reasons": reasons, "executed": executed,
               "would_run": would_run, "trace": record}  # fmt: skip
    if resubmit is not None:
        payload["resubmit"] = dict(resubmit)
    path = write_escalation(autonomy.settings, request_id, payload)
    logger.bind(request_id=request_id).warning("{}: {}", "stopped" if executed else "not run", summary)
    what = "stopped, a person must look" if executed else "outside the policy; nothing was run"
    return {**record, "decision": "escalate", "reasoning": f"{what}: {summary}", "reasons": reasons,
            "escalation": str(path)}  # fmt: skip


HANDLER = HandlerSpec(request_type="chapter_13", model=Chapter13Request, check=check, handle=handle)


def run_pipeline_request(
    request: PipelineRequest,
    ctx: HandlerContext,
    proposals: Sequence[Proposal],
    overrides: Mapping[str, Value] | None = None,
    autonomy: Autonomy | None = None,
) -> dict[str, Any]:
    """A request in the pipeline's layout, as a plan: the same policy, dispatch and trace as our own types."""
    inputs = PlanInputs(overrides=dict(overrides or {}), check_stale_current=False, approved_by=approved_by(ctx),
                        resubmit=request.model_dump(mode="json"))  # fmt: skip
    head = {"kind": "plan", "request_type": request.request_type,
            "requested_by": request.requested_by or request.source, "pipeline_request": request.summary(),
            **approval_head(ctx)}  # fmt: skip
    if overrides:
        head["parameters"] = dict(overrides)
    autonomy = autonomy or Autonomy.create(ctx.settings, ctx.judge)
    return execute_plan(autonomy, ctx.request_id, proposals, inputs, head)

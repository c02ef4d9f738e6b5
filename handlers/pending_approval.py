"""``pending_approval``: the orchestrator's approval file, as the daemon finds it (``pipeline.approval_file``).

Its ``steps_to_run`` become one plan, checked against the policy like any request. Where the policy wants a person
(``policy.approval_required.retrain_execution`` ships true, as in the pipeline's v1 policy) the plan is escalated
and the file stays ``pending`` until ``watcher approve`` or ``watcher deny``. An approved plan runs exactly the
listed steps (``[3, 5, 6]`` never runs 4), and the file's status follows it, written back atomically:
``processing_by_watcher`` while it runs, then ``completed_by_watcher`` or ``failed_by_watcher``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, StrictInt

from handlers.chapter_13 import PlanInputs, approval_head, approved_by, execute_plan
from watcher.autonomy import approval_file
from watcher.autonomy.orchestrator import Autonomy
from watcher.autonomy.policy import Proposal
from watcher.autonomy.state import decide_plan
from watcher.config import Settings
from watcher.core.ids import ID_PATTERN
from watcher.requests.contract import HandlerContext, HandlerSpec
from watcher.requests.model import RequestBase

REQUEST_TYPE = "pending_approval"


class ApprovalFile(BaseModel):
    """The keys of the orchestrator's approval file that the watcher reads; the others are kept as written."""

    model_config = ConfigDict(frozen=True, extra="allow")

    request_id: str = Field(pattern=ID_PATTERN, description="The orchestrator's id, e.g. ch13_20260115_024307.")
    status: str = Field(max_length=64, description="pending when it waits.")
    steps_to_run: list[Annotated[StrictInt, Field(ge=0, le=99)]] = Field(
        min_length=1, max_length=20, description="Pipeline steps to run, exactly these."
    )
    action_required: str | None = Field(None, max_length=64, description="learning_loop, full_pipeline, ...")
    evaluation: dict[str, JsonValue] | None = Field(None, description="The trigger's evaluation (recorded).")


class PendingApprovalRequest(RequestBase):
    """The approval file as a job of the daemon (made by the daemon, not dropped into the spool)."""

    type: Literal["pending_approval"] = Field(description="Request type.")
    file: str = Field(max_length=4096, description="The approval file, relative to the root.")
    approval: ApprovalFile = Field(description="The file's content when it was read.")


def check(request: PendingApprovalRequest, settings: Settings, file: Path) -> None:
    """Nothing beyond the schema."""


def proposal_of(approval: ApprovalFile) -> Proposal:
    evaluation = approval.evaluation or {}
    reason = str(evaluation.get("reasoning") or approval.action_required or "pending approval")[:200]
    if approval.action_required == "selfplay":
        return Proposal("run_selfplay", reason)
    steps = tuple(dict.fromkeys(str(step) for step in approval.steps_to_run))
    return Proposal("run_learning_loop", reason, steps=steps, reset=approval.action_required == "full_pipeline")


def handle(request: PendingApprovalRequest, ctx: HandlerContext, autonomy: Autonomy | None = None) -> dict[str, Any]:
    approval = request.approval
    file = ctx.settings.path(request.file)
    mine = approval_file.read(file) or {}
    trace: dict[str, Any] = {"file": str(file), "request_id": approval.request_id,
                             "steps_to_run": approval.steps_to_run, "statuses": []}  # fmt: skip
    # Pending, or already moved on by this very request (a restart after a crash: its jobs replay from records).
    runnable = mine.get("status") == approval_file.PENDING or mine.get("watcher_request_id") == ctx.request_id
    head = {"kind": "plan", "request_type": REQUEST_TYPE, "requested_by": request.file,
            "approval_file": trace, **approval_head(ctx)}  # fmt: skip
    if mine.get("request_id") != approval.request_id or not runnable:
        now = f"{mine.get('request_id')!r} with status {mine.get('status')!r}"
        reasoning = f"{file} no longer waits for {approval.request_id!r} (it holds {now}); nothing ran"
        return {**head, "decision": "escalate", "policy": None, "actions": [], "reasoning": reasoning}
    confidence = (approval.evaluation or {}).get("confidence")
    resubmit = request.model_dump(mode="json", exclude_none=True)
    inputs = PlanInputs(confidence if isinstance(confidence, float | int) else None, check_stale_current=False,
                        approved_by=approved_by(ctx), resubmit=resubmit)  # fmt: skip
    autonomy = autonomy or Autonomy.create(ctx.settings, ctx.judge)
    proposals = [proposal_of(approval)]
    plan = decide_plan(autonomy.policy, autonomy.state, ctx.request_id, proposals, inputs.context)
    if plan["approved"]:
        who = approved_by(ctx) or "watcher policy"
        _move(file, approval.request_id, approval_file.PROCESSING, trace, (approval_file.PENDING,
              approval_file.PROCESSING), watcher_request_id=ctx.request_id, approved_by=who)  # fmt: skip
    record = execute_plan(autonomy, ctx.request_id, proposals, inputs, head)
    if plan["approved"]:
        final = approval_file.COMPLETED if record["decision"] == "proceed" else approval_file.FAILED
        _move(file, approval.request_id, final, trace, (approval_file.PROCESSING,),
              watcher_decision=record["decision"], watcher_reasoning=str(record.get("reasoning"))[:500])  # fmt: skip
    return record


def _move(
    file: Path, request_id: str, status: str, trace: dict[str, Any], expect: tuple[str, ...], **fields: Any
) -> None:
    if approval_file.set_status(file, request_id, status, expect, **fields):
        trace["statuses"].append(status)


HANDLER = HandlerSpec(request_type=REQUEST_TYPE, model=PendingApprovalRequest, check=check, handle=handle)

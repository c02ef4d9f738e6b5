"""``run_selfplay``: run the selfplay job now (LLM server stopped while it runs), then judge its output.

Held to the same policy as the advisor's proposals: the action must be allowed, the hourly limit applies, any
parameter values must be declared by the job and stay within the policy's limits, and a stated confidence or
risk is checked too. Outside the policy: an escalation, nothing run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, StrictBool, StrictFloat, StrictInt

from handlers.chapter_13 import PlanInputs, approval_head, approved_by, execute_plan
from watcher.autonomy.orchestrator import Autonomy
from watcher.autonomy.policy import Proposal
from watcher.config import Settings
from watcher.config.jobs import PARAMETER_NAME_RE, Action, Risk
from watcher.requests.contract import HandlerContext, HandlerSpec
from watcher.requests.model import RequestBase

ParameterValue = StrictBool | StrictInt | StrictFloat | Annotated[str, Field(max_length=200)]


class RunJobRequest(RequestBase):
    """Fields shared by the direct job requests."""

    parameters: dict[Annotated[str, Field(pattern=PARAMETER_NAME_RE)], ParameterValue] = Field(
        default_factory=dict,
        description="Values for this run only, by parameter name; each must be a declared slot of the job "
        "and within policy. Default: the values in force.",
    )
    reason: str = Field("", max_length=200, description="Why the job should run (for the record).")
    requested_by: str | None = Field(None, max_length=200, description="Who asks (for the record).")
    confidence: float | None = Field(
        None, ge=0, le=1, description="The requester's confidence; checked against policy.min_confidence if given."
    )
    risk: Risk | None = Field(
        None, description="The requester's risk estimate; checked against policy.max_risk if given."
    )


class RunSelfplayRequest(RunJobRequest):
    """Run the configured selfplay job and judge its output."""

    type: Literal["run_selfplay"] = Field(description="Request type.")


def check(request: RunJobRequest, settings: Settings, file: Path) -> None:
    """Nothing beyond the schema: every policy rule is checked when the request is handled, and escalated."""


def run_job_request(
    request: RunJobRequest, ctx: HandlerContext, action: Action, autonomy: Autonomy | None
) -> dict[str, Any]:
    resubmit = request.model_dump(mode="json", exclude_none=True)
    inputs = PlanInputs(request.confidence, request.risk, dict(request.parameters), check_stale_current=False,
                        approved_by=approved_by(ctx), resubmit=resubmit)  # fmt: skip
    head = {
        "kind": "plan",
        "request_type": request.type,
        "requested_by": request.requested_by,
        "parameters": request.parameters,
        **approval_head(ctx),
    }
    autonomy = autonomy or Autonomy.create(ctx.settings, ctx.judge)
    return execute_plan(autonomy, ctx.request_id, [Proposal(action, request.reason)], inputs, head)


def handle(request: RunSelfplayRequest, ctx: HandlerContext, autonomy: Autonomy | None = None) -> dict[str, Any]:
    return run_job_request(request, ctx, "run_selfplay", autonomy)


HANDLER = HandlerSpec(request_type="run_selfplay", model=RunSelfplayRequest, check=check, handle=handle)

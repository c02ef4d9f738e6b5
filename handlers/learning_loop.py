"""``learning_loop`` (pipeline layout): run the learning-loop steps its ``scope`` lists, exactly those.

``steps_3_5_6`` runs the loop steps judged as steps 3, 5 and 6 (not 4); ``steps_5_6``, ``step_6_only`` likewise;
``full`` or ``full_pipeline`` runs every loop step and counts as a full reset for the policy.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from handlers.chapter_13 import run_pipeline_request
from watcher.autonomy.orchestrator import Autonomy
from watcher.autonomy.policy import Proposal
from watcher.config import Settings
from watcher.requests.contract import HandlerContext, HandlerSpec
from watcher.requests.pipeline import SCOPE_PATTERN, PipelineRequest, scope_steps


class LearningLoopRequest(PipelineRequest):
    """The learning loop over a scope of steps, in the pipeline's layout."""

    request_type: Literal["learning_loop"] = Field(description="Request kind.")
    scope: str = Field(
        "steps_3_5_6",
        pattern=SCOPE_PATTERN,
        description="Which steps: `steps_3_5_6`, `steps_5_6`, `step_6_only`, `full` or `full_pipeline`.",
    )


def check(request: LearningLoopRequest, settings: Settings, file: Path) -> None:
    """Nothing beyond the schema: a step the loop does not have is escalated when the request is handled."""


def handle(request: LearningLoopRequest, ctx: HandlerContext, autonomy: Autonomy | None = None) -> dict[str, Any]:
    steps = scope_steps(request.scope)
    reason = request.reason or f"learning_loop {request.scope}"
    proposal = Proposal("run_learning_loop", reason, steps=steps, reset=steps is None)
    return run_pipeline_request(request, ctx, [proposal], autonomy=autonomy)


HANDLER = HandlerSpec(
    request_type="learning_loop",
    model=LearningLoopRequest,
    check=check,
    handle=handle,
    type_key="request_type",
    id_key="request_id",
)

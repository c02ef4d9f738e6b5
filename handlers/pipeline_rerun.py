"""``pipeline_rerun`` (pipeline layout): every learning-loop step, in order; a full reset for the policy."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from handlers.chapter_13 import run_pipeline_request
from watcher.autonomy.orchestrator import Autonomy
from watcher.autonomy.policy import Proposal
from watcher.config import Settings
from watcher.requests.contract import HandlerContext, HandlerSpec
from watcher.requests.pipeline import PipelineRequest


class PipelineRerunRequest(PipelineRequest):
    """The whole pipeline again, in the pipeline's layout."""

    request_type: Literal["pipeline_rerun"] = Field(description="Request kind.")


def check(request: PipelineRerunRequest, settings: Settings, file: Path) -> None:
    """Nothing beyond the schema."""


def handle(request: PipelineRerunRequest, ctx: HandlerContext, autonomy: Autonomy | None = None) -> dict[str, Any]:
    proposal = Proposal("run_learning_loop", request.reason or "pipeline_rerun", reset=True)
    return run_pipeline_request(request, ctx, [proposal], autonomy=autonomy)


HANDLER = HandlerSpec(
    request_type="pipeline_rerun",
    model=PipelineRerunRequest,
    check=check,
    handle=handle,
    type_key="request_type",
    id_key="request_id",
)

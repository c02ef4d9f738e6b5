"""``selfplay_retrain`` (pipeline layout): run the selfplay job, as the pipeline's Chapter 13 asks for it.

``episodes`` (1-50, default 5) and ``survivors_file`` (default ``survivors_with_scores.json``, must exist inside
the root) reach the job only through the parameters ``pipeline.episodes_parameter`` and
``pipeline.survivors_parameter`` name, each checked against its slot and the policy like any other value.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, StrictInt

from handlers.chapter_13 import run_pipeline_request
from watcher.autonomy.orchestrator import Autonomy
from watcher.autonomy.policy import Proposal, Value
from watcher.config import Settings
from watcher.errors import InputError
from watcher.requests.contract import HandlerContext, HandlerSpec
from watcher.requests.paths import resolve_inside
from watcher.requests.pipeline import PipelineRequest


class SelfplayRetrainRequest(PipelineRequest):
    """Selfplay retraining, in the layout `chapter_13_triggers` writes."""

    request_type: Literal["selfplay_retrain"] = Field(description="Request kind.")
    episodes: StrictInt = Field(5, ge=1, le=50, description="Selfplay episodes, 1-50. Default 5.")
    survivors_file: str = Field(
        "survivors_with_scores.json",
        min_length=1,
        max_length=4096,
        description="Survivors file, relative to the root; it must exist there.",
    )


def check(request: SelfplayRetrainRequest, settings: Settings, file: Path) -> None:
    target = resolve_inside(settings, request.survivors_file, file)
    if not target.is_file():
        raise InputError(file, f"survivors_file {request.survivors_file!r} does not exist in {settings.root}")


def overrides(request: SelfplayRetrainRequest, settings: Settings) -> dict[str, Value]:
    cfg = settings.watcher.pipeline
    out: dict[str, Value] = {}
    if cfg.episodes_parameter is not None:
        out[cfg.episodes_parameter] = request.episodes
    if cfg.survivors_parameter is not None:
        out[cfg.survivors_parameter] = request.survivors_file
    return out


def handle(request: SelfplayRetrainRequest, ctx: HandlerContext, autonomy: Autonomy | None = None) -> dict[str, Any]:
    proposal = Proposal("run_selfplay", request.reason or "selfplay_retrain")
    return run_pipeline_request(request, ctx, [proposal], overrides(request, ctx.settings), autonomy)


HANDLER = HandlerSpec(
    request_type="selfplay_retrain",
    model=SelfplayRetrainRequest,
    check=check,
    handle=handle,
    type_key="request_type",
    id_key="request_id",
)

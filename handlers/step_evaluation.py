"""``evaluate_step``: judge one pipeline step's output file, as a request or when the watch finds a new output."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from watcher.config import Settings
from watcher.config.outputs import output_folders
from watcher.config.steps import STEP_KEY_PATTERN
from watcher.errors import InputError, PolicyViolation
from watcher.requests.contract import HandlerContext, HandlerSpec
from watcher.requests.model import RequestBase
from watcher.requests.paths import resolve_inside


class EvaluateStepRequest(RequestBase):
    """Judge a step output file and write the decision."""

    type: Literal["evaluate_step"] = Field(description="Request type.")
    step: str | None = Field(
        None,
        pattern=STEP_KEY_PATTERN,
        description="Step number as in config/watcher.json. null: found from the steps' output_glob.",
    )
    file: str = Field(
        min_length=1,
        max_length=4096,
        description="The step output file, relative to the root; it must stay inside the root or a step's "
        "output folder.",
    )
    metadata: dict[str, Any] | None = Field(None, description="Free-form; copied into the decision record.")


def check(request: EvaluateStepRequest, settings: Settings, file: Path) -> None:
    if request.step is not None and request.step not in settings.watcher.steps:
        known = ", ".join(settings.watcher.steps)
        raise PolicyViolation(f"{file}: step {request.step!r} is not configured; steps are {known}")
    # As written only: the path is resolved, symlinks and all, when the request is handled.
    resolve_inside(settings, request.file, file, output_folders(settings), lexical=True)


def handle(request: EvaluateStepRequest, ctx: HandlerContext) -> Mapping[str, Any]:
    target = resolve_inside(ctx.settings, request.file, Path(request.file), output_folders(ctx.settings))
    if not target.is_file():
        raise InputError(target, "step output file not found (or not a regular file)")
    record = dict(ctx.judge.judge(target, request.step, request_id=ctx.request_id))
    if request.metadata is not None:
        record["metadata"] = request.metadata
    return record


HANDLER = HandlerSpec(request_type="evaluate_step", model=EvaluateStepRequest, check=check, handle=handle)

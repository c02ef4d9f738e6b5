"""``evaluate_step``: judge one pipeline step's output file, as a request or when the watch finds a new output."""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from handlers.registry import HandlerContext, HandlerSpec
from watcher.config import Settings
from watcher.errors import InputError, PolicyViolation
from watcher.requests import RequestBase, resolve_inside

WILDCARDS = frozenset("*?[")


class EvaluateStepRequest(RequestBase):
    """Judge a step output file and write the decision."""

    type: Literal["evaluate_step"] = Field(description="Request type.")
    step: str | None = Field(
        None,
        pattern=r"^[1-9][0-9]*$",
        description="Step number as in config/watcher.json. null: found from the steps' output_glob.",
    )
    file: str = Field(
        min_length=1,
        max_length=4096,
        description="The step output file, relative to the root; it must stay inside the root or a step's "
        "output folder.",
    )
    metadata: dict[str, Any] | None = Field(None, description="Free-form; copied into the decision record.")


def fixed_prefix(glob: str) -> Path:
    """The folders of a glob up to its first wildcard: ``out/*/x.json`` -> ``out``."""
    folders = Path(glob).parts[:-1]
    cut = next((i for i, part in enumerate(folders) if WILDCARDS & set(part)), len(folders))
    return Path(*folders[:cut])


def output_folders(settings: Settings) -> tuple[Path, ...]:
    """The folder part (before any wildcard) of every step's output_glob: the places step outputs may live."""
    return _output_folders(settings.root, tuple(step.output_glob for step in settings.watcher.steps.values()))


@lru_cache(maxsize=64)
def _output_folders(root: Path, globs: tuple[str, ...]) -> tuple[Path, ...]:
    return tuple(dict.fromkeys(root / fixed_prefix(glob) for glob in globs))


def check(request: EvaluateStepRequest, settings: Settings, file: Path) -> None:
    if request.step is not None and request.step not in settings.watcher.steps:
        known = ", ".join(sorted(settings.watcher.steps, key=int))
        raise PolicyViolation(f"{file}: step {request.step!r} is not configured; steps are {known}")
    # As written only: the path is resolved, symlinks and all, when the request is handled.
    resolve_inside(settings, request.file, file, output_folders(settings), lexical=True)


def handle(request: EvaluateStepRequest, ctx: HandlerContext) -> Mapping[str, Any]:
    target = resolve_inside(ctx.settings, request.file, Path(request.file), output_folders(ctx.settings))
    if not target.is_file():
        raise InputError(target, "step output file not found (or not a regular file)")
    record = dict(ctx.judge.judge(target, request.step, request_id=ctx.request_id))
    if request.metadata is not None:
        record.setdefault("metadata", request.metadata)
    return record


HANDLER = HandlerSpec(request_type="evaluate_step", model=EvaluateStepRequest, check=check, handle=handle)

"""Requests in the layout the pipeline's Chapter 13 writes into ``watcher_requests/``.

Its writer names the type ``request_type`` and the id ``request_id`` and adds bookkeeping keys of its own; every
key it writes is declared here, so the file is accepted exactly as written and anything else is refused. The
scope names of a ``learning_loop`` request are parsed here into step numbers.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from watcher.core.ids import ID_PATTERN

SCOPE_PATTERN = r"^(full|full_pipeline|step_[0-9]+_only|steps(_[0-9]+)+)$"
FULL_SCOPES = ("full", "full_pipeline")


class PipelineRequest(BaseModel):
    """Keys every request of the pipeline's layout has (``chapter_13_triggers`` writes all of them)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    request_type: str = Field(description="The request kind; picks the handler.")
    request_id: str | None = Field(
        None, pattern=ID_PATTERN, description="Used as the decision's file name. Default: sha256 of the file."
    )
    created_at: str | None = Field(None, max_length=64, description="When it was written (for the record).")
    status: str = Field("pending", max_length=64, description="The writer's status, `pending` (recorded).")
    reason: str = Field("", max_length=2000, description="Why it was asked (for the record).")
    source_policy: str | None = Field(None, max_length=200, description="The policy that asked (recorded).")
    priority: Literal["normal", "high"] = Field("normal", description="normal or high (recorded).")
    requested_by: str | None = Field(None, max_length=200, description="Who asks (for the record).")
    requires_watcher_approval: bool = Field(
        True, description="Always true from the pipeline: the watcher's policy decides."
    )
    source: str | None = Field(None, max_length=200, description="Who wrote it, in hand-written requests.")

    def summary(self) -> dict[str, object]:
        """The request's own bookkeeping, for the decision record."""
        return self.model_dump(mode="json")


def scope_steps(scope: str) -> tuple[str, ...] | None:
    """``steps_3_5_6`` -> ("3", "5", "6"); ``step_6_only`` -> ("6",); ``full``/``full_pipeline`` -> None (all)."""
    if scope in FULL_SCOPES:
        return None
    only = re.fullmatch(r"step_([0-9]+)_only", scope)
    if only:
        return (str(int(only.group(1))),)
    numbers = scope.split("_")[1:]
    return tuple(dict.fromkeys(str(int(n)) for n in numbers))

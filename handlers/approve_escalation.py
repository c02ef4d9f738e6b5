"""``approve_escalation``: a person approved an escalation (``watcher approve``); run what it held back.

The escalation file keeps the request it came from (``resubmit``). That request is validated again, as if it had
just arrived, and handed to its own handler under this request's id, with the approval attached: the person's
approval lifts only the rules that asked for a person (``watcher.autonomy.person``); parameter ranges, change
limits and the configured jobs bound it as before. Handled by the daemon like any request, so a restart finishes an
approved run without starting any of its jobs twice.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from watcher.config import Settings
from watcher.core.ids import ID_PATTERN, safe_name
from watcher.errors import InputError
from watcher.requests.contract import HandlerContext, HandlerSpec
from watcher.requests.model import RequestBase
from watcher.requests.validate import validate_request

REQUEST_TYPE = "approve_escalation"


class ApproveEscalationRequest(RequestBase):
    """A person's approval of one escalation."""

    type: Literal["approve_escalation"] = Field(description="Request type.")
    escalation: str = Field(pattern=ID_PATTERN, description="The id of the escalation approved.")
    decided_by: str = Field(min_length=1, max_length=200, description="Who approved.")
    decided_at: str = Field(max_length=64, description="When, UTC ISO 8601.")
    note: str | None = Field(None, max_length=2000, description="The person's note.")


def escalation_file(settings: Settings, escalation: str) -> Path:
    return settings.path(settings.watcher.folders.escalations) / f"{safe_name(escalation)}.json"


def check(request: ApproveEscalationRequest, settings: Settings, file: Path) -> None:
    held_back(settings, request.escalation, file)


def held_back(settings: Settings, escalation: str, file: Path) -> dict[str, Any]:
    """The request an escalation held back; InputError when there is none to run."""
    path = escalation_file(settings, escalation)
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(file, f"escalation {escalation!r} cannot be read: {exc}") from exc
    resubmit = record.get("resubmit") if isinstance(record, dict) else None
    if not isinstance(resubmit, dict):
        raise InputError(file, f"escalation {escalation!r} holds no request that could run")
    return resubmit


def handle(request: ApproveEscalationRequest, ctx: HandlerContext) -> dict[str, Any]:
    from handlers import registry  # the registry lists this module: import it when handling, not when loading

    file = escalation_file(ctx.settings, request.escalation)
    payload = held_back(ctx.settings, request.escalation, file)
    data = json.dumps(payload, sort_keys=True).encode("utf-8")
    original = validate_request(payload, data, file, ctx.settings, registry())
    approval = {"escalation": request.escalation, "decided_by": request.decided_by,
                "decided_at": request.decided_at, "note": request.note}  # fmt: skip
    approved = dataclasses.replace(ctx, approval=approval)
    return dict(original.spec.handle(original.model, approved))


HANDLER = HandlerSpec(request_type=REQUEST_TYPE, model=ApproveEscalationRequest, check=check, handle=handle)

"""The pipeline's approval file as a daemon job: read where it lies (never claimed or moved), one job per
``request_id`` while its status is ``pending``.

The file's own id names the decision, so a file the watcher already decided (escalated, or ran) is not decided
again when its status is written back or it is read anew after a restart; a new request from the orchestrator
has a new id and is decided in its turn. A file in any other status is someone else's state and is left alone.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from watcher.core.ids import sha256_hex
from watcher.core.jsondoc import decode_json
from watcher.errors import InputError, PolicyViolation
from watcher.intake.readiness import signature
from watcher.intake.roles import APPROVAL
from watcher.requests.model import Request
from watcher.requests.validate import validate_request

if TYPE_CHECKING:
    from watcher.daemon.scheduler import Scheduler

REQUEST_TYPE = "pending_approval"  # the handler that judges the file (handlers/pending_approval.py)


def offer_approval(scheduler: Scheduler, path: Path, data: bytes, info: os.stat_result, now: float) -> None:
    """The approval file, read and settled: a job, nothing (not pending), or an error record (the file stays)."""
    sha, sig = sha256_hex(data), signature(info)
    try:
        payload = decode_json(data, path)
    except InputError as exc:
        if scheduler.settler.failed(path, now):  # still broken after the grace time: not a write in progress
            scheduler.refusals.step_error(path, APPROVAL, sha, exc, sig)
        return
    scheduler.settler.done(path)
    try:
        request = approval_request(scheduler, payload, data, path)
    except (InputError, PolicyViolation) as exc:
        scheduler.refusals.step_error(
            path, APPROVAL, sha, exc if isinstance(exc, InputError) else InputError(path, str(exc)), sig
        )
        return
    if request is None:  # not pending: the orchestrator's or a person's state, not a job
        scheduler.settler.mark_processed(path, sig)
        return
    scheduler._start(scheduler._job("approval", path, request, path.name, sig=sig))


def approval_request(scheduler: Scheduler, payload: Any, data: bytes, path: Path) -> Request | None:
    """The job's request; None while the file does not wait for a decision. InputError/SchemaViolation when the
    file is not an approval file."""
    if not isinstance(payload, dict):
        raise InputError(path, f"expected a JSON object, got {type(payload).__name__}")
    if payload.get("status") != "pending":
        return None
    body: dict[str, Any] = {"type": REQUEST_TYPE, "file": scheduler.watchset.relative(path), "approval": payload}
    if isinstance(payload.get("request_id"), str):
        body["id"] = payload["request_id"]
    return validate_request(body, data, path, scheduler.settings, scheduler.registry)

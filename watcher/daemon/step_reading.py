"""A watched step output for the scheduler: its hash, whether it parses, whether its step has finished, and the
job it becomes (an ``evaluate_step`` request with the id ``step<N>-<sha>``, so the same content is judged once).

Step outputs have no size cap (``limits.max_file_bytes`` is for requests). One whose step has a ``stream`` spec (a
large array of records) is hashed in chunks and never parsed here: its judge summarises it by streaming. Any other
is read whole, parsed, and asked its step's ``ready_when``.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from loguru import logger

from watcher.config import Settings
from watcher.core.ids import sha256_hex, step_output_id
from watcher.core.jsondoc import decode_json
from watcher.core.regular import file_kind, read_regular
from watcher.errors import InputError
from watcher.intake.readiness import signature
from watcher.judging.step_files import is_ready
from watcher.judging.streaming import file_sha256
from watcher.requests.model import Request

if TYPE_CHECKING:
    from watcher.daemon.scheduler import Scheduler

NO_CAP = 1 << 62
STEP_REQUEST = "evaluate_step"  # the request type a watched step output becomes


@dataclass(frozen=True)
class StepRead:
    info: os.stat_result
    sha256: str
    ready: bool = True
    error: InputError | None = None  # did not parse (yet): retried for the grace period, then recorded


def read_step_output(settings: Settings, path: Path, step: str) -> StepRead:
    """FileNotFoundError passes through; a file that is not a regular one is an InputError."""
    config = settings.watcher.steps[step]
    if config.stream is not None:
        info = os.lstat(path)
        if not stat.S_ISREG(info.st_mode):
            raise InputError(path, f"not a regular file: {file_kind(info.st_mode)}")
        return StepRead(info, file_sha256(path))
    data, info = read_regular(path, NO_CAP)
    sha = sha256_hex(data)
    try:
        document = decode_json(data, path)
    except InputError as exc:
        return StepRead(info, sha, ready=False, error=exc)
    return StepRead(info, sha, ready=is_ready(config, document))


def offer_step_output(scheduler: Scheduler, path: Path, step: str, now: float) -> None:
    """A settled step output: a job, a wait for its step to finish, or (still unparseable) an error record."""
    found = read_step_output(scheduler.settings, path, step)
    sha, info = found.sha256, found.info
    if found.error is not None:
        if scheduler.settler.failed(path, now):
            scheduler.refusals.step_error(path, step, sha, found.error, signature(info))
        return
    if not found.ready:
        wait_for_step(scheduler, path, step, info)
        return
    scheduler.waiting_steps.pop(path, None)
    request_id = step_output_id(step, sha)
    scheduler.settler.done(path)
    if request_id in scheduler.seen:
        scheduler.settler.mark_processed(path, signature(info))
        scheduler.metrics.outcome("unchanged")
        return
    spec = scheduler.registry.handler_for(STEP_REQUEST, path)
    fields = {"type": STEP_REQUEST, "id": request_id, "step": step, "file": scheduler.watchset.relative(path)}
    request = Request(request_id, STEP_REQUEST, spec.model.model_validate(fields), sha, spec)
    scheduler._start(scheduler._job("step_output", path, request, path.name, sig=signature(info)))


def wait_for_step(scheduler: Scheduler, path: Path, step: str, info: os.stat_result) -> None:
    """Not judged, not rejected, not remembered as seen: the next version (a new signature) is offered."""
    if path not in scheduler.waiting_steps:
        logger.info("{}: waiting for step {} to finish", path, step)
        scheduler.metrics.outcome("waiting")
    scheduler.waiting_steps[path] = step
    scheduler.settler.done(path, signature(info))

"""One unit of work, run on a worker thread: the handler's decision, written atomically, then the archive.

Order is what makes a crash harmless: the decision file is complete and durable before the request leaves
``processing/``. A restart finds the request still claimed, sees its decision, and archives it without asking
the judge again.
"""

from __future__ import annotations

import errno
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from loguru import logger

from watcher.config import Settings
from watcher.core.clock import now_iso
from watcher.daemon.workers import EvaluationSlots
from watcher.errors import (
    BinaryNotFound,
    ConfigError,
    EvaluationError,
    GrammarError,
    InputError,
    LLMServerError,
    ModelNotFound,
    PolicyViolation,
    ProvisionError,
    RecordInvalid,
)
from watcher.intake.readiness import Sig
from watcher.judging.protocols import StepJudge
from watcher.judging.records import escalation_body, finish_record
from watcher.requests.contract import HandlerContext
from watcher.requests.model import Request
from watcher.spool.folders import Spool

Kind = Literal["request", "step_output", "approval"]  # approval: the pipeline's approval file, left in place
# decided: a decision from the handler; escalated: no validated decision, a person must look;
# rejected: the request (or step output) is invalid; retry: the server was unavailable, try again later;
# cancelled: shutdown came before it started; it stays claimed for the next start; fault: the installation is
# broken (see DEPLOYMENT_FAULTS), the request waits claimed until it is fixed.
Result = Literal["decided", "escalated", "rejected", "retry", "cancelled", "fault"]
# Faults of the installation, never of a request: a grammar file missing or unreadable, a model or binary that
# disappeared, a config or build that does not load, a record our own code cannot build.
# A path from the request that no file system call can use: the request's fault, not a reason to retry.
PATH_ERRNOS = frozenset({errno.ENAMETOOLONG, errno.ELOOP, errno.ENOTDIR, errno.EILSEQ})
DEPLOYMENT_FAULTS = (GrammarError, BinaryNotFound, ModelNotFound, ProvisionError, ConfigError, RecordInvalid)


@dataclass
class Job:
    kind: Kind
    path: Path  # requests: the claimed file in processing/; step outputs, approval file: the file itself
    request: Request
    source: str  # the name the file arrived with
    settings: Settings
    judge: StepJudge
    sig: Sig | None = None
    recovered: bool = False
    attempts: int = 0
    fault: str | None = None  # the installation fault it waits on (watcher.daemon.faults)

    @property
    def id(self) -> str:
        return self.request.id


@dataclass(frozen=True)
class Outcome:
    job: Job
    result: Result
    seconds: float
    error: str | None = None
    server_down: bool = False  # a retry that waits for the LLM server, however long that takes
    fault_kind: str | None = None  # for result "fault": the exception class
    summary: dict[str, Any] | None = None  # decision, reasoning, escalation file: what a person is told


def run_job(job: Job, spool: Spool, slots: EvaluationSlots) -> Outcome:
    """Never raises: every failure becomes an Outcome the main loop can count and act on."""
    request_log = logger.bind(request_id=job.id)
    if not slots.acquire():
        return Outcome(job, "cancelled", 0.0)
    start = time.perf_counter()
    try:
        try:
            record, result = _decide(job)
        finally:
            slots.release()
        seconds = time.perf_counter() - start  # the evaluation alone, for the latency histogram
        spool.write_decision(job.id, finish(job, record))
        if job.kind == "request":
            spool.archive(job.path)
    except Exception as exc:
        return _failed(job, spool, exc, time.perf_counter() - start)
    request_log.info("{}: decision {} in {:.3f}s", job.source, record.get("decision"), seconds)
    summary = {key: record.get(key) for key in ("decision", "reasoning", "escalation")}
    return Outcome(job, result, seconds, summary=summary)


def _failed(job: Job, spool: Spool, exc: Exception, seconds: float) -> Outcome:
    """What a failure means: the installation's fault (wait), the request's (reject), or maybe passing (retry)."""
    request_log = logger.bind(request_id=job.id)
    if isinstance(exc, DEPLOYMENT_FAULTS):  # before LLMServerError: a missing model or binary is one of these
        # Logged once per fault by the scheduler, not once per request.
        request_log.debug("waits for the installation to be fixed: {}", exc)
        return Outcome(job, "fault", seconds, str(exc), fault_kind=type(exc).__name__)
    if isinstance(exc, InputError | PolicyViolation):
        rule, details = rule_of(exc)
        _reject(job, spool, rule, details)
        request_log.warning("rejected: {}", rule)
        return Outcome(job, "rejected", seconds, rule)
    if isinstance(exc, LLMServerError | OSError):
        request_log.warning("will retry: {}", exc)
        return Outcome(job, "retry", seconds, str(exc), server_down=isinstance(exc, LLMServerError))
    # Not known to be the request's fault, nor the installation's: a bounded retry, then a rejection naming the
    # exception (the scheduler gives up after IO_RETRY_LIMIT attempts).
    if job.attempts == 0:
        request_log.opt(exception=exc).error("handler failed; will retry")
    return Outcome(job, "retry", seconds, f"handler failed: {type(exc).__name__}: {exc}")


def _decide(job: Job) -> tuple[dict[str, Any], Result]:
    context = HandlerContext(settings=job.settings, judge=job.judge, request_id=job.id)
    try:
        return dict(job.request.spec.handle(job.request.model, context)), "decided"
    except EvaluationError as exc:
        reasoning = f"no validated decision could be obtained: {exc}"
        return escalation_body(reasoning, exc.attempts), "escalated"
    except OSError as exc:
        if exc.errno not in PATH_ERRNOS:
            raise
        # In the handler, before any write of ours: the path the request names cannot be used.
        raise InputError(job.path, f"unusable path: {exc.strerror}: {exc.filename}") from exc


def _reject(job: Job, spool: Spool, rule: str, details: list[str]) -> None:
    try:
        if job.kind == "request":
            spool.reject(job.path, rule, details, job.id)
        else:
            spool.record_error(job.id, job.path, rule, details)
    except OSError as exc:
        logger.bind(request_id=job.id).error("cannot record the rejection: {}", exc)


def rule_of(error: Exception) -> tuple[str, list[str]]:
    if isinstance(error, InputError):
        return error.rule, error.details
    return str(error), []


def finish(job: Job, body: dict[str, Any]) -> dict[str, Any]:
    """The record as written: the handler's body under the request's head."""
    return finish_record(
        body,
        request_id=job.id,
        request_type=job.request.type,
        source=job.source,
        decided_at=now_iso(),
        request_sha256=job.request.sha256,
    )

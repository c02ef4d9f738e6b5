"""Any exception met while reading, parsing or validating a file, as the rule the file broke.

The read -> parse -> validate path is fed by strangers: whatever it raises must end as a rejection that names the
file and the rule (or, for a transient file system error, a bounded retry), never as a file left in the spool
with no word to its producer.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from loguru import logger

from watcher.core.ids import sha256_hex, step_output_id
from watcher.daemon.execute import Job, rule_of
from watcher.daemon.metrics import Metrics
from watcher.errors import InputError, PolicyViolation
from watcher.intake.readiness import Settler, Sig, signature
from watcher.intake.roles import REQUEST
from watcher.intake.seen_outputs import SeenOutputs
from watcher.spool.folders import Spool

# Gone between the event and the read: nothing to answer (the producer took it back), nothing to retry.
VANISHED = (FileNotFoundError, NotADirectoryError)
# May pass: the file is tried once more after the invalid-input grace period, then rejected.
TRANSIENT_ERRNOS = frozenset({errno.EIO, errno.EAGAIN, errno.EINTR, errno.ENOMEM, errno.EMFILE, errno.ENFILE})
MAX_TEXT = 200


_RULES: tuple[tuple[type[BaseException], str], ...] = (
    (UnicodeError, "not valid text: {}"),
    (RecursionError, "nested too deeply to validate"),
    (MemoryError, "too large to process in memory"),
)


def as_input_error(path: Path, error: BaseException) -> InputError:
    """The rule ``path`` broke, from whatever was raised while reading, parsing or validating it."""
    if isinstance(error, InputError):
        return error
    if isinstance(error, PolicyViolation):
        return InputError(path, str(error))
    if isinstance(error, OSError):
        return InputError(path, f"cannot read: {error.strerror or _short(error)}")
    rule = next((rule for kind, rule in _RULES if isinstance(error, kind)), None)
    if rule is None:
        return InputError(path, f"cannot be processed: {type(error).__name__}: {_short(error)}")
    return InputError(path, rule.format(_short(error)))


def is_transient(error: BaseException) -> bool:
    return isinstance(error, OSError) and error.errno in TRANSIENT_ERRNOS


def conflict(path: Path, request_id: str, decided: str, received: str) -> InputError:
    """A request that reuses a decided id with other content: the producer must hear about it."""
    return InputError(
        path,
        f"id {request_id!r} was already decided for other content; give this request its own id",
        [f"decided request sha256: {decided}", f"this file's sha256: {received}"],
    )


def _short(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0][:MAX_TEXT] if lines else type(error).__name__


class Refusals:
    """Rejecting requests and recording the errors of step outputs, for the scheduler (main loop thread only)."""

    def __init__(self, spool: Spool, settler: Settler, seen: SeenOutputs, metrics: Metrics) -> None:
        self.spool, self.settler, self.seen, self.metrics = spool, settler, seen, metrics

    def refuse(self, path: Path, role: str, exc: BaseException) -> None:
        """Reject a file (a request) or record the error of a step output, for whatever ``exc`` was."""
        error = as_input_error(path, exc)
        try:
            if role == REQUEST:
                self.reject(path, error)
                return
            try:
                sig = signature(os.lstat(path))
            except VANISHED:
                self.settler.done(path)
                return
            self.step_error(path, role, sha256_hex(f"{path}{sig}".encode()), error, sig)
        except OSError as cannot:  # the folders themselves fail: said once per rescan, the file stays
            self.settler.done(path)
            logger.error("{}: {}; cannot record it: {}", path, error.rule, cannot)

    def reject(self, path: Path, error: Exception, request_id: str | None = None) -> None:
        rule, details = rule_of(error)
        self.settler.done(path)
        target = self.spool.reject(path, rule, details, request_id)
        logger.bind(request_id=request_id).warning("{}: rejected to {}: {}", path.name, target, rule)
        self.metrics.outcome("rejected")

    def reject_job(self, job: Job, rule: str) -> None:
        request_log = logger.bind(request_id=job.id)
        try:
            if job.kind == "request":
                self.spool.reject(job.path, rule, [], job.id)
            else:
                self.spool.record_error(job.id, job.path, rule, [])
        except OSError as exc:  # it stays claimed; the next start tries again
            request_log.error("{}: cannot reject: {}", job.source, exc)
            return
        request_log.error("{}: {}", job.source, rule)

    def step_error(self, path: Path, step: str, sha: str, error: InputError, sig: Sig) -> None:
        key = step_output_id(step, sha)
        self.settler.done(path, sig)
        if key in self.seen or self.spool.has_error(key):
            return
        self.spool.record_error(key, path, error.rule, error.details)
        self.seen.add(key)
        logger.bind(request_id=key).warning("{}: step {} output invalid: {}", path, step, error.rule)
        self.metrics.outcome("rejected")

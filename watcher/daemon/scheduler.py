"""From a file that is ready to read to a job on the worker pool, and from a job's outcome back to the folders.

Runs on the main loop's thread only, so its bookkeeping needs no locks. Rules kept here:
- a request is claimed only after it parsed and validated (a half-written file is never moved);
- one job per request id at a time: a second file with an id in flight waits, then finds the decision and is
  archived as a duplicate (same content) or rejected as a conflict (other content, both sha256 named); an id
  whose decision exists is never judged again;
- whatever reading, parsing or validating a file raises ends as a rejection naming the rule (``refusals``), and
  a job that meets a fault of the installation waits claimed (``faults``), never rejected;
- at most ``capacity`` jobs are queued or running; the rest wait in the spool, unclaimed;
- a step output is hashed by streaming, with no size cap (the cap is for requests); one whose step is still
  rewriting it (its ``ready_when`` is false) waits: no job, no rejection, listed in ``waiting_steps``, and is
  offered again when its next version settles.
"""

from __future__ import annotations

import heapq
import itertools
import os
from collections import deque
from collections.abc import Callable
from pathlib import Path

from loguru import logger

from watcher.config import Settings
from watcher.core.jsondoc import decode_json
from watcher.core.regular import read_regular
from watcher.daemon.approvals import offer_approval
from watcher.daemon.execute import Job, Outcome
from watcher.daemon.faults import Faults
from watcher.daemon.metrics import Metrics
from watcher.daemon.refusals import VANISHED, Refusals, conflict, is_transient
from watcher.daemon.step_reading import offer_step_output
from watcher.errors import InputError
from watcher.intake.readiness import Settler, signature
from watcher.intake.roles import APPROVAL, REQUEST, WatchSet
from watcher.intake.seen_outputs import SeenOutputs
from watcher.judging.protocols import StepJudge
from watcher.requests.contract import Registry
from watcher.requests.model import Request
from watcher.requests.validate import parse_request, validate_request
from watcher.spool.folders import Spool

RETRY_BASE_SEC = 2.0
RETRY_MAX_SEC = 300.0
IO_RETRY_LIMIT = 8  # file system errors give up after this many attempts; an absent server never does


class Scheduler:
    def __init__(
        self,
        *,
        settings: Settings,
        judge: StepJudge,
        registry: Registry,
        spool: Spool,
        seen: SeenOutputs,
        metrics: Metrics,
        submit: Callable[[Job], None],
        busy: Callable[[], int],
        capacity: int,
    ) -> None:
        self.spool, self.seen, self.metrics, self.registry = spool, seen, metrics, registry
        self._submit, self._busy, self.capacity = submit, busy, capacity
        intake = settings.watcher.intake
        self.settler = Settler(intake.settle_sec, intake.invalid_grace_sec)
        self.inflight: dict[str, Job] = {}
        self.waiting_steps: dict[Path, str] = {}  # step outputs whose step has not finished: path -> step
        self.held: dict[str, list[Job]] = {}
        self.backlog: deque[Job] = deque()
        self.faults = Faults()
        self.refusals = Refusals(spool, self.settler, seen, metrics)
        self._retries: list[tuple[float, int, Job]] = []
        self._sequence = itertools.count()
        self.configure(settings, judge)

    def configure(self, settings: Settings, judge: StepJudge) -> None:
        intake = settings.watcher.intake
        self.settings, self.judge = settings, judge
        self.watchset = WatchSet(settings)
        self.settler.settle_sec, self.settler.grace_sec = intake.settle_sec, intake.invalid_grace_sec
        self._release(self.faults.release_all())  # a reload may have fixed what they wait for

    def _release(self, jobs: list[Job]) -> None:
        for job in jobs:
            self.inflight.pop(job.id, None)  # held its id while it waited, so no duplicate could start
            job.settings, job.judge = self.settings, self.judge
            self.backlog.append(job)

    # -- intake ----------------------------------------------------------------------------------------------

    def hint(self, path: Path, complete: bool = False) -> None:
        if self.watchset.role(path) is not None:
            self.settler.hint(path, complete=complete)

    def rescan(self) -> None:
        for path in (*self.spool.scan(), *self.watchset.step_outputs()):
            self.hint(path)
        self._release(self.faults.probes())

    def recover(self) -> int:
        """Queue the requests a previous run claimed and did not finish."""
        claimed = self.spool.claimed()
        for path in claimed:
            self.backlog.extend(self._reload_claimed(path, recovered=True))
        return len(claimed)

    @property
    def depth(self) -> int:
        """Files and jobs waiting for a worker."""
        held = sum(map(len, self.held.values()))
        return len(self.settler) + len(self.backlog) + len(self._retries) + held + self.faults.parked

    @property
    def waiting_files(self) -> int:
        """Files seen and not yet read (settling, or waiting for a free worker)."""
        return len(self.settler)

    def update(self, now: float) -> None:
        """Move files whose settle time has passed to the ready list."""
        self.settler.update(now)

    def next_deadline(self) -> float | None:
        """When the next settling file is due to be looked at again."""
        return self.settler.next_deadline()

    def free(self) -> int:
        return self.capacity - self._busy()

    def pump(self, now: float) -> None:
        while self._retries and self._retries[0][0] <= now:
            self._release([heapq.heappop(self._retries)[2]])
        while self.free() > 0 and self.backlog:
            self._start(self.backlog.popleft())
        while (free := self.free()) > 0:
            paths = self.settler.take(free)
            if not paths:
                break
            for path in paths:
                self._offer(path, now)

    def next_retry(self) -> float | None:
        return self._retries[0][0] if self._retries else None

    def _offer(self, path: Path, now: float) -> None:
        role = self.watchset.role(path)
        if role is None:  # no longer ours after a reload
            self.settler.done(path)
            self.waiting_steps.pop(path, None)
            return
        try:
            self._read_and_offer(path, role, now)
        except VANISHED:
            logger.debug("{}: gone before it could be read", path)
            self.settler.done(path)
            self.waiting_steps.pop(path, None)
        except Exception as exc:  # whatever it is, the file gets an answer
            if is_transient(exc) and not self.settler.failed(path, now):
                logger.warning("{}: cannot read yet, trying again: {}", path.name, exc)
                return
            self.refusals.refuse(path, role, exc)

    def _read_and_offer(self, path: Path, role: str, now: float) -> None:
        if role not in (REQUEST, APPROVAL):
            offer_step_output(self, path, role, now)
            return
        data, info = read_regular(path, self.settings.watcher.limits.max_file_bytes)
        if role == APPROVAL:
            offer_approval(self, path, data, info, now)
        else:
            self._offer_request(path, data, info, now)

    def _offer_request(self, path: Path, data: bytes, info: os.stat_result, now: float) -> None:
        try:
            payload = decode_json(data, path)
        except InputError as exc:
            if self.settler.failed(path, now):
                self.refusals.reject(path, exc)
            return
        request = validate_request(payload, data, path, self.settings, self.registry)
        self.settler.done(path)
        claimed = self.spool.claim(path)
        if claimed is None:
            return
        logger.bind(request_id=request.id).debug("{}: claimed ({})", path.name, request.type)
        try:
            changed = signature(os.lstat(claimed)) != signature(info)
        except VANISHED:
            return  # taken out of processing/ by hand
        if changed:  # written to after it was read: validate what was actually claimed
            self.backlog.extend(self._reload_claimed(claimed))
            return
        self._start(self._job("request", claimed, request, path.name))

    def _reload_claimed(self, claimed: Path, recovered: bool = False) -> list[Job]:
        """A claimed request read and validated again (changed after its read, or left by a previous run)."""
        try:
            data, _ = read_regular(claimed, self.settings.watcher.limits.max_file_bytes)
            request = parse_request(data, claimed, self.settings, self.registry)
        except VANISHED:
            return []
        except Exception as exc:
            self.refusals.refuse(claimed, REQUEST, exc)
            return []
        return [self._job("request", claimed, request, claimed.name, recovered=recovered)]

    def _job(self, kind: str, path: Path, request: Request, source: str, **extra: object) -> Job:
        return Job(kind, path, request, source, self.settings, self.judge, **extra)  # type: ignore[arg-type]

    # -- jobs ------------------------------------------------------------------------------------------------

    def _start(self, job: Job) -> None:
        if job.id in self.inflight:
            self.held.setdefault(job.id, []).append(job)
        elif not self._decided_before(job):
            self.inflight[job.id] = job
            self._submit(job)

    def _decided_before(self, job: Job) -> bool:
        """Archive (or skip) a job whose id already has a decision; True when it did."""
        if job.kind == "request":
            if not self.spool.has_decision(job.id):
                return False
            decided = self.spool.decided_sha256(job.id)
            if decided is not None and decided != job.request.sha256:
                self.refusals.reject(job.path, conflict(job.path, job.id, decided, job.request.sha256), job.id)
                return True
            self.spool.archive(job.path, duplicate=not job.recovered)
            outcome = "recovered" if job.recovered else "duplicate"
        else:
            if not (self.spool.has_decision(job.id) or self.spool.has_error(job.id)):
                return False
            self.seen.add(job.id)
            if job.sig is not None:
                self.settler.mark_processed(job.path, job.sig)
            outcome = "unchanged"
        self.spool.ensure_logged(job.id)
        logger.bind(request_id=job.id).info("{}: already decided, archived as {}", job.source, outcome)
        self.metrics.outcome(outcome)
        return True

    def complete(self, outcomes: list[Outcome], now: float) -> None:
        for outcome in outcomes:
            job, result = outcome.job, outcome.result
            if result == "cancelled":
                self.cancel([job])
                continue
            if result == "fault":
                self.faults.park(job, outcome.fault_kind or "fault", outcome.error or "")
                continue
            self._release(self.faults.settled(job, decided=result in ("decided", "escalated")))
            if result == "retry":
                if self._retry(outcome, now):
                    continue
                result = "rejected"
            self.inflight.pop(job.id, None)
            self.metrics.outcome(result)
            if result in ("decided", "escalated"):
                self.metrics.observe(outcome.seconds)
            if job.kind != "request":
                self.seen.add(job.id)
                if job.sig is not None:
                    self.settler.mark_processed(job.path, job.sig)
            self.backlog.extend(self.held.pop(job.id, []))

    def _retry(self, outcome: Outcome, now: float) -> bool:
        """Schedule the job again (True), or give up on it and reject it (False)."""
        job = outcome.job
        job.attempts += 1
        if not outcome.server_down and job.attempts >= IO_RETRY_LIMIT:
            self.refusals.reject_job(job, f"gave up after {job.attempts} attempts: {outcome.error}")
            return False
        delay = min(RETRY_MAX_SEC, RETRY_BASE_SEC * 2 ** (job.attempts - 1))
        heapq.heappush(self._retries, (now + delay, next(self._sequence), job))
        logger.bind(request_id=job.id).info("retry {} in {:.0f}s", job.attempts, delay)
        return True

    def cancel(self, jobs: list[Job]) -> None:
        """Jobs handed back unstarted at shutdown: they stay claimed and are finished on the next start."""
        for job in jobs:
            self.inflight.pop(job.id, None)
            self.faults.forget(job)

"""Running configured jobs: argument lists in their own process group, with a persisted record of each run.

The record (``<folders.state>/jobs/<job id>.json``) is written before the process starts and after it ends, so a
restarted watcher that meets the same job id again never starts it a second time:

    no record                      -> start it
    finished                       -> the recorded result (``recovered``)
    running, same pid + start time -> wait for it (``adopted``; its exit code is not ours to read)
    running, process gone          -> ``finished_unobserved``, exit code unknown
    starting, no pid               -> ``unknown``: it may or may not have started, so it is not started again
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import psutil
from loguru import logger

from watcher.config import Settings
from watcher.config.jobs import JobConfig, JobsConfig
from watcher.core import affinity
from watcher.core.atomic import atomic_write_json
from watcher.core.clock import iso
from watcher.core.ids import safe_name
from watcher.llm.process import ProcessGroup

JobStatus = Literal["exited", "timed_out", "recovered", "adopted", "finished_unobserved", "unknown"]


@dataclass(frozen=True)
class JobResult:
    job_id: str
    name: str
    argv: list[str]
    status: JobStatus
    exit_code: int | None
    started: str | None
    finished: str | None
    duration_sec: float | None
    log_file: str
    pid: int | None
    started_epoch: float | None = None
    note: str = ""

    @property
    def succeeded(self) -> bool:
        return self.exit_code == 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class JobRunner:
    """Runs one job at a time per call; persists its record in ``<folders.state>/jobs/``."""

    settings: Settings
    config: JobsConfig
    clock: Callable[[], float] = time.time

    @property
    def state_dir(self) -> Path:
        return self.settings.path(self.settings.watcher.folders.state) / "jobs"

    def record_path(self, job_id: str) -> Path:
        return self.state_dir / f"{safe_name(job_id)}.json"

    def load_record(self, job_id: str) -> dict[str, Any] | None:
        path = self.record_path(job_id)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            # A record we cannot read still means the job may have run: never guess "not started".
            return {"state": "starting", "note": f"unreadable record {path}: {exc}"}
        return data if isinstance(data, dict) else {"state": "starting", "note": f"malformed record {path}"}

    def _save(self, job_id: str, record: dict[str, Any]) -> None:
        atomic_write_json(self.record_path(job_id), record)

    def annotate(self, job_id: str, key: str, value: Any) -> None:
        """Keep ``value`` with the job's record (e.g. the judgement of its output), for a later replay."""
        record = self.load_record(job_id)
        if record is None:
            raise KeyError(f"no record of job {job_id}")
        self._save(job_id, {**record, key: value})

    def run(self, job_id: str, name: str, job: JobConfig, argv: list[str]) -> JobResult:
        """Run the job unless a record says it already ran (or may have); its result either way."""
        existing = self.load_record(job_id)
        if existing is not None:
            return self._recover(job_id, name, job, existing)
        return self._start_and_wait(job_id, name, job, argv)

    def _start_and_wait(self, job_id: str, name: str, job: JobConfig, argv: list[str]) -> JobResult:
        log_file = self._log_file(job_id, job)
        started = self.clock()
        record: dict[str, Any] = {
            "job_id": job_id, "name": name, "argv": argv, "state": "starting", "pid": None,
            "create_time": None, "started": iso(started), "started_epoch": started, "finished": None,
            "exit_code": None, "timed_out": False, "log_file": str(log_file),
        }  # fmt: skip
        self._save(job_id, record)
        try:
            process = self._spawn(job, argv, log_file, job_id)
        except OSError as exc:
            # 127, as a shell says of a command it cannot run; the record says why.
            record["note"] = f"cannot start {argv[0]!r}: {exc.strerror or exc}"
            return self._finish(job_id, record, "exited", 127)
        record |= {"state": "running", "pid": process.pid, "create_time": _create_time(process.pid)}
        self._save(job_id, record)
        events = logger.bind(request_id=job_id)
        events.info("job {} started: pid {}, argv {}", name, process.pid, argv)
        exit_code, timed_out = self._wait_child(process, started + job.timeout_sec)
        status: JobStatus = "timed_out" if timed_out else "exited"
        events.info("job {} {}: exit code {}", name, status, exit_code)
        return self._finish(job_id, record, status, exit_code)

    def _spawn(self, job: JobConfig, argv: list[str], log_file: Path, job_id: str) -> subprocess.Popen[bytes]:
        program = argv[0]
        if "/" in program and not Path(program).is_absolute():
            program = str(self.settings.root / program)
        cwd = self.settings.path(job.cwd) if job.cwd is not None else self.settings.root
        env = {**os.environ, **job.env, "WATCHER_JOB_ID": job_id}
        log_file.parent.mkdir(parents=True, exist_ok=True)
        with log_file.open("ab") as log:
            log.write(f"=== {iso(self.clock())} job {job_id}: {argv}\n".encode())
            log.flush()
            # Its own session: the group can be stopped as a whole, and it outlives a watcher that dies. Every CPU
            # the watcher was given, not the one its threads run on.
            with affinity.unpinned():
                return subprocess.Popen(
                    [program, *argv[1:]], cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=log,
                    stderr=subprocess.STDOUT, start_new_session=True, close_fds=True,
                )  # fmt: skip

    def _log_file(self, job_id: str, job: JobConfig) -> Path:
        if job.log_file is not None:
            return self.settings.path(job.log_file)
        return self.settings.path(self.config.log_dir) / f"{safe_name(job_id)}.log"

    def _wait_child(self, process: subprocess.Popen[bytes], deadline: float) -> tuple[int, bool]:
        try:
            return process.wait(timeout=max(0.0, deadline - self.clock())), False
        except subprocess.TimeoutExpired:
            stop_group(process.pid, self.config.kill_grace_sec)
            return process.wait(), True

    def _finish(self, job_id: str, record: dict[str, Any], status: JobStatus, exit_code: int | None) -> JobResult:
        finished = self.clock()
        record |= {"state": "finished", "finished": iso(finished), "finished_epoch": finished}
        record |= {"exit_code": exit_code, "timed_out": status == "timed_out", "status": status}
        self._save(job_id, record)
        return result_from(job_id, record)

    def _recover(self, job_id: str, name: str, job: JobConfig, record: dict[str, Any]) -> JobResult:
        events = logger.bind(request_id=job_id)
        record.setdefault("name", name)
        state = record.get("state")
        if state == "finished":
            events.info("job {} already ran (exit code {}); not run again", name, record.get("exit_code"))
            return result_from(job_id, record, override="recovered")
        pid = record.get("pid")
        if state == "running" and isinstance(pid, int) and _same_process(pid, record.get("create_time")):
            events.warning("job {} is still running from before a restart (pid {}): waiting for it", name, pid)
            timed_out = self._wait_foreign(pid, float(record.get("started_epoch", 0)) + job.timeout_sec)
            record["note"] = "started before a restart; waited for it; its exit code is not observable"
            return self._finish(job_id, record, "timed_out" if timed_out else "adopted", None)
        if state == "running":
            record["note"] = "finished while the watcher was down; its exit code is unknown"
            status: JobStatus = "finished_unobserved"
        else:
            record["note"] = record.get("note") or "the watcher stopped while starting it; it may have run"
            status = "unknown"
        events.warning("job {}: {}; not run again", name, record["note"])
        return self._finish(job_id, record, status, None)

    def _wait_foreign(self, pid: int, deadline: float) -> bool:
        try:
            process = psutil.Process(pid)
            while self.clock() < deadline:
                with contextlib.suppress(psutil.TimeoutExpired):
                    process.wait(timeout=self.config.poll_interval_sec)
                    return False
                if process.status() == psutil.STATUS_ZOMBIE:
                    return False
        except psutil.NoSuchProcess:
            return False
        stop_group(pid, self.config.kill_grace_sec)
        return True


def result_from(job_id: str, record: dict[str, Any], override: JobStatus | None = None) -> JobResult:
    started, finished = record.get("started_epoch"), record.get("finished_epoch")
    duration = round(finished - started, 3) if isinstance(started, float) and isinstance(finished, float) else None
    return JobResult(
        job_id=job_id, name=str(record.get("name", "")), argv=list(record.get("argv") or []),
        status=override or record.get("status", "unknown"), exit_code=record.get("exit_code"),
        started=record.get("started"), finished=record.get("finished"), duration_sec=duration,
        log_file=str(record.get("log_file", "")), pid=record.get("pid"), started_epoch=started,
        note=str(record.get("note", "")),
    )  # fmt: skip


def _create_time(pid: int) -> float | None:
    try:
        return psutil.Process(pid).create_time()
    except psutil.Error:
        return None


def _same_process(pid: int, create_time: object) -> bool:
    """The pid is alive and is the process we started (not a later one that reused the number)."""
    try:
        process = psutil.Process(pid)
        alive = process.status() != psutil.STATUS_ZOMBIE
        return alive and isinstance(create_time, float) and abs(process.create_time() - create_time) < 0.01
    except psutil.Error:
        return False


def stop_group(pid: int, grace_sec: float) -> None:
    """SIGTERM the job's group, SIGKILL it after ``grace_sec``; returns when no member is left (or a bound)."""
    group = ProcessGroup.of(pid)
    for signum, wait in ((signal.SIGTERM, grace_sec), (signal.SIGKILL, 5.0)):
        group.signal(signum)
        if group.wait_gone(time.monotonic() + wait):
            return

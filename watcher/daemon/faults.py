"""Faults of the installation (a grammar file gone, a model or binary moved, a record our code cannot build): the
requests that met one wait here, claimed, and are never rejected for it.

One fault per distinct message. It is logged once when it appears and once when it clears, shown in
``status.json``, the metrics and systemd's STATUS=. While it lasts, one of its requests is tried again at every
rescan (a probe); when a probe gets through, the fault is gone and every request that waited on it is released.
A reload (SIGHUP) releases them all at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from loguru import logger

from watcher.core.clock import now_iso
from watcher.daemon.execute import Job


@dataclass
class Fault:
    kind: str
    message: str
    since: str
    jobs: list[Job] = field(default_factory=list)
    probing: int = 0  # jobs released to try again and not back yet

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "message": self.message, "since": self.since, "waiting": len(self.jobs)}


class Faults:
    def __init__(self) -> None:
        self._faults: dict[str, Fault] = {}
        self._config: Fault | None = None  # a config that did not reload: shown, no request waits on it

    def __len__(self) -> int:
        return len(self._faults) + (self._config is not None)

    @property
    def parked(self) -> int:
        """Requests waiting for a fault to clear."""
        return sum(len(f.jobs) for f in self._faults.values())

    def park(self, job: Job, kind: str, message: str) -> None:
        self._back(job)
        fault = self._faults.get(message)
        if fault is None:
            fault = self._faults[message] = Fault(kind, message, now_iso())
            logger.error(
                "installation fault ({}): {}; requests wait claimed, none is rejected for it. Fix it, then "
                "reload (SIGHUP) or wait for the next rescan",
                kind,
                message,
            )
        job.fault = message
        fault.jobs.append(job)

    def settled(self, job: Job, *, decided: bool) -> list[Job]:
        """A job that had waited on a fault is back without meeting it. Decided: it got through, so the fault is
        gone and the requests still waiting on it are released. Otherwise (rejected for its own reasons) the next
        rescan tries another one."""
        fault = self._back(job)
        if fault is None or not (decided or (not fault.jobs and not fault.probing)):
            return []
        del self._faults[fault.message]
        logger.info("installation fault cleared ({}): {}", fault.kind, fault.message)
        return fault.jobs

    def probes(self) -> list[Job]:
        """One waiting job per fault that has none on trial."""
        out = []
        for fault in self._faults.values():
            if fault.jobs and not fault.probing:
                fault.probing += 1
                out.append(fault.jobs.pop(0))
        return out

    def release_all(self) -> list[Job]:
        """Every waiting job (after a reload, whatever was wrong may be fixed)."""
        out = []
        for fault in self._faults.values():
            fault.probing += len(fault.jobs)
            out.extend(fault.jobs)
            fault.jobs = []
        return out

    def forget(self, job: Job) -> None:
        """A job handed back at shutdown: it stays claimed and is tried again on the next start."""
        self._back(job)

    def _back(self, job: Job) -> Fault | None:
        """The job returns from a trial; the fault it had waited on, if that still stands."""
        fault = self._faults.get(job.fault) if job.fault is not None else None
        job.fault = None
        if fault is not None and fault.probing:
            fault.probing -= 1
        return fault

    def config_failed(self, message: str) -> None:
        self._config = Fault("ConfigError", message, now_iso())

    def config_loaded(self) -> None:
        self._config = None

    def report(self) -> list[dict[str, Any]]:
        faults = [*self._faults.values(), *([self._config] if self._config else [])]
        return [fault.as_dict() for fault in faults]

    def line(self) -> str:
        """For STATUS=: the first fault, shortened."""
        faults = self.report()
        if not faults:
            return ""
        more = f" (+{len(faults) - 1} more)" if len(faults) > 1 else ""
        return f"FAULT {faults[0]['kind']}: {faults[0]['message'][:160]}{more}; "

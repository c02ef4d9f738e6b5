"""What the lifecycle manager reports: a stop, and the state of a server."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

GB = 1e9

State = Literal["stopped", "starting", "running", "stopping"]


@dataclass(frozen=True)
class StopReport:
    server: str
    stopped: bool  # False: nothing of this config was running
    pids: tuple[int, ...] = ()
    found_by: str = ""  # "this process", "pid record" or "process scan"
    forced: bool = False  # SIGTERM was not enough: the group was killed
    seconds: float = 0.0  # stop request -> group gone and port free
    rss_freed_bytes: int = 0
    gpu_freed_bytes: int | None = None  # None: no nvidia-smi
    port_free: bool = True

    def summary(self) -> str:
        if not self.stopped:
            return f"llm server {self.server!r}: nothing to stop"
        gpu = "" if self.gpu_freed_bytes is None else f", GPU memory freed {self.gpu_freed_bytes / GB:.2f} GB"
        how = "killed after the stop timeout" if self.forced else "stopped"
        pids = ", ".join(str(pid) for pid in self.pids)
        return (
            f"llm server {self.server!r} (pid {pids}, found by {self.found_by}) {how} in {self.seconds:.2f}s; "
            f"RSS freed {self.rss_freed_bytes / GB:.2f} GB{gpu}"
        )


@dataclass(frozen=True)
class ServerStatus:
    name: str
    state: State
    healthy: bool
    pid: int | None
    host: str
    port: int
    base_url: str
    owner: str  # "this process", "pid record", "process scan" or "" when stopped
    uptime_sec: float | None
    startups: int  # successful starts by this manager (or the pid record's count, for another process's server)
    model: str | None
    ctx_size: int
    kv_cache_est_bytes: int | None
    rss_bytes: int | None
    in_flight: int
    idle_seconds_left: float | None  # None: idle stop does not apply (off, nothing running, or in use)
    log_file: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

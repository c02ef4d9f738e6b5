"""Process groups of llama-server: spawn (dying with this process), signal, wait until gone, find, and who holds a port.

Why a spawner thread: ``PR_SET_PDEATHSIG`` fires when the *thread* that forked the child exits, not the process.
A server forked from a short-lived worker thread would be killed when that worker ends. Every fork therefore
happens on one daemon thread that lives exactly as long as this process.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import psutil

from watcher.core import affinity

PR_SET_PDEATHSIG = 1
GONE_POLL_SEC = 0.005  # stop waits are short; a coarse poll would be most of the stop time

_libc_prctl: Callable[..., int] | None = None
if sys.platform.startswith("linux"):
    # Resolved now: the child must not load libraries between fork and exec.
    _libc_prctl = ctypes.CDLL(None, use_errno=True).prctl


def _die_with(parent_pid: int) -> Callable[[], None]:
    def preexec() -> None:
        if _libc_prctl is not None:
            _libc_prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        # The parent may have died between fork and prctl; the signal would then never come.
        if os.getppid() != parent_pid:
            os._exit(1)

    return preexec


@dataclass(frozen=True)
class SpawnSpec:
    command: tuple[str, ...]
    env: dict[str, str]
    log_file: Path
    dies_with_parent: bool = True


class _Spawner:
    """One long-lived thread that performs every fork (see the module docstring)."""

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[tuple[SpawnSpec, Future[subprocess.Popen[bytes]]]] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def spawn(self, spec: SpawnSpec) -> subprocess.Popen[bytes]:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="llm-spawner", daemon=True)
                self._thread.start()
        result: Future[subprocess.Popen[bytes]] = Future()
        self._jobs.put((spec, result))
        return result.result()

    def _run(self) -> None:
        affinity.unpin_this_thread()  # the server gets every CPU, not the daemon's one (it inherits this mask)
        while True:
            spec, result = self._jobs.get()
            try:
                result.set_result(_popen(spec))
            except BaseException as exc:  # handed to the caller's thread, which raises it
                result.set_exception(exc)


def _popen(spec: SpawnSpec) -> subprocess.Popen[bytes]:
    spec.log_file.parent.mkdir(parents=True, exist_ok=True)
    log: IO[bytes]
    with spec.log_file.open("ab") as log:
        return subprocess.Popen(
            spec.command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=spec.env,
            start_new_session=True,  # its own process group: one killpg reaches everything it spawns
            # The child only calls a pre-resolved prctl and getppid: no lock another thread could hold.
            preexec_fn=_die_with(os.getpid()) if spec.dies_with_parent else None,  # noqa: PLW1509
            close_fds=True,
        )


_SPAWNER = _Spawner()


def spawn(spec: SpawnSpec) -> subprocess.Popen[bytes]:
    return _SPAWNER.spawn(spec)


# ---------------------------------------------------------------------------------------------------------------
# Process groups
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProcessGroup:
    """A server's process group, signalled as a whole only when the server leads it and it is not ours.

    A server started by a script without its own session shares the script's group (or ours): then only the
    server itself is signalled and waited for. Never signal the launching shell, never signal ourselves.
    """

    pgid: int
    leader: int

    @classmethod
    def of(cls, pid: int) -> ProcessGroup:
        try:
            return cls(os.getpgid(pid), pid)
        except ProcessLookupError:
            return cls(pid, pid)

    @property
    def whole_group(self) -> bool:
        return self.pgid == self.leader and self.pgid != os.getpgrp()

    def members(self) -> list[psutil.Process]:
        """Live (non-zombie) processes of the group: a zombie's memory is already back."""
        if not self.whole_group:
            return _live([self.leader])
        found = []
        for proc in psutil.process_iter(["status"]):
            with contextlib.suppress(ProcessLookupError, psutil.Error):
                if proc.info["status"] != psutil.STATUS_ZOMBIE and os.getpgid(proc.pid) == self.pgid:
                    found.append(proc)
        return found

    def signal(self, signum: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError):  # already gone is success
            if self.whole_group:
                os.killpg(self.pgid, signum)
            else:
                os.kill(self.leader, signum)

    def wait_gone(self, deadline: float, reap: Callable[[], object] | None = None) -> bool:
        """Poll until no live member is left or ``deadline`` (monotonic) passes."""
        while True:
            if reap is not None:
                reap()
            if not self._any_alive():
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(GONE_POLL_SEC)

    def _any_alive(self) -> bool:
        # A live leader settles it cheaply; the full process scan runs only once the leader is gone.
        if _live([self.leader]):
            return True
        return bool(self.members()) if self.whole_group else False


def _live(pids: Sequence[int]) -> list[psutil.Process]:
    live = []
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            proc = psutil.Process(pid)
            if proc.status() != psutil.STATUS_ZOMBIE:
                live.append(proc)
    return live


# ---------------------------------------------------------------------------------------------------------------
# Ports and matching servers
# ---------------------------------------------------------------------------------------------------------------


def port_listening(host: str, port: int) -> bool:
    """Whether something accepts connections on host:port (a wildcard bind is probed on loopback)."""
    target = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)  # noqa: S104 (a probe)
    family = socket.AF_INET6 if ":" in target else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((target, port)) == 0


def wait_port_free(host: str, port: int, deadline: float) -> bool:
    while port_listening(host, port):
        if time.monotonic() >= deadline:
            return False
        time.sleep(GONE_POLL_SEC)
    return True


def port_holder(port: int) -> psutil.Process | None:
    """The process listening on ``port``, if psutil may see it."""
    with contextlib.suppress(psutil.Error, OSError):
        for conn in psutil.net_connections(kind="tcp"):
            if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port and conn.pid:
                return psutil.Process(conn.pid)
    return None


def describe_process(proc: psutil.Process | None) -> str:
    if proc is None:
        return "a process psutil cannot see"
    try:
        return f"pid {proc.pid} ({' '.join(proc.cmdline()[:4]) or proc.name()})"
    except psutil.Error:
        return f"pid {proc.pid}"


def runs_binary(proc: psutil.Process, binary: Path) -> bool:
    """Whether ``proc`` runs ``binary``: as its executable, or as the script an interpreter runs."""
    wanted = binary.resolve()
    try:
        candidates = [proc.exe(), *proc.cmdline()[:2]]
    except psutil.Error:
        return False
    return any(c and _same_file(Path(c), wanted) for c in candidates)


def _same_file(path: Path, wanted: Path) -> bool:
    try:
        return path.resolve() == wanted
    except OSError:
        return False


def find_servers(binary: Path, port: int) -> list[psutil.Process]:
    """Live processes running ``binary`` with ``--port port`` on their command line."""
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        cmdline: Sequence[str] = proc.info["cmdline"] or ()
        if proc.info["status"] == psutil.STATUS_ZOMBIE or not _has_port_arg(cmdline, port):
            continue
        if proc.pid != os.getpid() and runs_binary(proc, binary):
            found.append(proc)
    return found


def _has_port_arg(cmdline: Sequence[str], port: int) -> bool:
    args = list(cmdline)
    return any(a == "--port" and i + 1 < len(args) and args[i + 1] == str(port) for i, a in enumerate(args)) or (
        f"--port={port}" in args
    )


def log_tail(path: Path, lines: int = 20, max_bytes: int = 64 * 1024) -> str:
    """The last ``lines`` lines of a log file (bounded read)."""
    try:
        with path.open("rb") as handle:
            handle.seek(max(0, path.stat().st_size - max_bytes))
            text = handle.read().decode("utf-8", errors="replace")
    except OSError as exc:
        return f"(log {path} unreadable: {exc})"
    return "\n".join(text.splitlines()[-lines:])

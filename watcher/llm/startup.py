"""Starting a server process: the port check, its log, its pid record, and the wait for readiness."""

from __future__ import annotations

import contextlib
import subprocess
import threading
import time
from pathlib import Path

import psutil

from watcher.config import ServerConfig
from watcher.errors import PortInUse, ServerStartError, ServerStartTimeout
from watcher.llm.health import HealthProbe, Readiness
from watcher.llm.pidrecord import PidRecord, remove_record
from watcher.llm.process import (
    ProcessGroup,
    SpawnSpec,
    describe_process,
    log_tail,
    port_holder,
    port_listening,
    spawn,
)
from watcher.llm.server_process import Launch, ServerProcess
from watcher.llm.shutdown import kill


def refuse_foreign_listener(name: str, config: ServerConfig) -> None:
    """PortInUse when anything listens on the server's port: whatever it is, it is not ours to stop."""
    if port_listening(config.host, config.port):
        holder = describe_process(port_holder(config.port))
        raise PortInUse(
            name,
            f"{config.host}:{config.port} is held by {holder}, which is not a llama-server of this config; "
            "it is left alone: stop it or set another `port` in llm_server_config.json",
        )


def rotate_log(log_file: Path) -> None:
    """Keep the previous run's log as ``<name>.1`` so the tail quoted in an error is this run's."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        log_file.replace(log_file.with_name(log_file.name + ".1"))


def track(launch: Launch, popen: subprocess.Popen[bytes], started: float) -> ServerProcess:
    """Write the pid record of a just-spawned server (its own session: pgid == pid)."""
    try:
        create_time = psutil.Process(popen.pid).create_time()
    except psutil.Error:
        create_time = 0.0  # already gone; the readiness wait reports how it exited
    record = PidRecord(
        server=launch.name, pid=popen.pid, pgid=popen.pid, host=launch.config.host, port=launch.config.port,
        binary=launch.command[0], model=str(launch.model), command=launch.command, started_at=time.time(),
        create_time=create_time, startup=launch.startup, dies_with_parent=launch.dies_with_parent,
    )  # fmt: skip
    record.write(launch.record_file)
    return ServerProcess(record, ProcessGroup(popen.pid, popen.pid), popen, started)


def await_ready(
    launch: Launch, server: ServerProcess, probe: HealthProbe, cancel: threading.Event, model_problem: str = ""
) -> None:
    """Poll until the server is ready; raise at once if it exits, and at the deadline if it never gets there."""
    config = launch.config
    deadline = server.started + config.health_check_deadline_sec
    last = probe.wait_ready(launch.model, server.alive, deadline, config.health_poll_interval_sec, cancel)
    if last.readiness is Readiness.READY:
        return
    tail = f"last lines of {launch.log_file}:\n{log_tail(launch.log_file)}"
    if server.popen is not None and server.popen.poll() is not None:
        why = f" ({model_problem})" if model_problem else ""
        code = server.popen.returncode
        raise ServerStartError(launch.name, f"llama-server exited with code {code} before it was healthy{why}; {tail}")
    if cancel.is_set():
        raise ServerStartError(launch.name, "start abandoned: stop() was called")
    if last.readiness is Readiness.WRONG_MODEL:
        raise ServerStartError(launch.name, f"{config.base_url} {last.detail}")
    raise ServerStartTimeout(
        launch.name,
        f"not healthy within {config.health_check_deadline_sec:g}s (last: {last.detail}); "
        f"its process group is killed; {tail}",
    )


def launch_and_wait(
    launch: Launch, spec: SpawnSpec, probe: HealthProbe, cancel: threading.Event, kv_problem: str
) -> ServerProcess:
    """Spawn the server, record it, and wait until it is ready; a server that does not get there is killed."""
    rotate_log(launch.log_file)
    server = track(launch, spawn(spec), time.monotonic())
    try:
        await_ready(launch, server, probe, cancel, kv_problem)
    except BaseException:
        kill(launch.name, server.target())
        remove_record(launch.record_file, server.record.pid)
        raise
    return server

"""LLMLifecycleManager: a llama-server up when an evaluation needs it, gone (memory returned) when none does.

One manager per (config, server name), shared by every thread (``get_lifecycle_manager``). One lock orders
starts and stops; concurrent ``ensure_running()`` callers wait for the one start under way and share it. A
second, small lock guards the in-flight count, so ``in_use()`` never waits for a start.

Evaluations hold ``in_use()`` around ``ensure_running()`` and their requests: idle time counts from the end of
the last one, and the idle stop never happens while one is held.

GPU-heavy jobs run inside ``held_stopped()``: it waits for the evaluations in flight to finish, stops the server
(verified), and keeps it stopped, new evaluations waiting at ``in_use()`` / ``ensure_running()``, until the job ends.
"""

from __future__ import annotations

import atexit
import contextlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from loguru import logger

from watcher.config import ServerConfig, Settings, load_settings
from watcher.errors import BinaryNotFound
from watcher.llm.command import KvEstimate, build_command, build_env, kv_estimate
from watcher.llm.health import HealthProbe, Readiness
from watcher.llm.memory import process_rss
from watcher.llm.pidrecord import read_record, record_path, remove_record
from watcher.llm.process import ProcessGroup, SpawnSpec, log_tail
from watcher.llm.provision import model_if_any, resolve_binary, resolve_model
from watcher.llm.server_process import Launch, ServerProcess, Target, who_runs
from watcher.llm.shutdown import find_targets, stop_targets
from watcher.llm.startup import launch_and_wait, refuse_foreign_listener
from watcher.llm.status import ServerStatus, State, StopReport
from watcher.llm.usage import UsageGate


class LLMLifecycleManager:
    """Starts, watches and stops one configured llama-server. Satisfies ``watcher.protocols.ServerLease``.

    ``dies_with_parent=False`` is for ``watcher llm start``: a server that outlives the command that started it.
    """

    def __init__(self, settings: Settings, name: str = "primary", *, dies_with_parent: bool = True) -> None:
        self.settings = settings
        self.config: ServerConfig = settings.server(name)
        self.dies_with_parent = dies_with_parent
        self.record_file = record_path(settings.path(settings.watcher.folders.state), name)
        self.log_file = settings.path(self.config.log_dir) / f"llama-server-{name}.log"
        self._name = name
        self._probe = HealthProbe(self.config.base_url)
        self._lock = threading.RLock()
        self._usage = UsageGate(name)
        self._cancel = threading.Event()
        self._server: ServerProcess | None = None
        self._state: State = "stopped"
        self._startups = 0
        self._kv: KvEstimate | None = None

    @property
    def _model_name(self) -> str | None:
        return model_if_any(self.config, self.settings.root, self._name)

    @property
    def name(self) -> str:
        return self._name

    @property
    def base_url(self) -> str:
        return self.config.base_url

    def is_healthy(self) -> bool:
        """/health is 200 and /props shows the model loaded and awake (one quick HTTP round trip each)."""
        server = self._server
        return self._probe.probe(Path(server.record.model) if server else None).readiness is Readiness.READY

    def idle_seconds_left(self, now: float | None = None) -> float | None:
        """Seconds until the idle stop is due; None when it does not apply (off, nothing running, or in use)."""
        if self.config.idle_timeout_sec <= 0 or self._server is None:
            return None
        since = self._usage.idle_since()
        if since is None:
            return None
        return max(0.0, since + self.config.idle_timeout_sec - (now or time.monotonic()))

    # -- start ---------------------------------------------------------------------------------------------------

    def ensure_running(self) -> None:
        """Start the server unless it runs; block until it is healthy. Raises an LLMServerError when it cannot.

        While a GPU job holds the server stopped (``held_stopped``), this waits for the job to end.
        """
        self._usage.wait_for_release()
        with self._lock:
            server = self._server
            if server is None or not server.alive():
                if server is not None:
                    self._forget_exited(server)
                self._state = "starting"
                try:
                    self._server = self._adopt_or_start()
                finally:
                    self._state = "running" if self._server else "stopped"
            self._usage.touch()

    def _adopt_or_start(self) -> ServerProcess:
        binary = resolve_binary(self.config, self.settings.root, self._name)
        model = resolve_model(self.config, self.settings.root, self._name)
        command = build_command(self.config, binary, model)
        return self._adopt(command) or self._start(binary, model, command)

    def _adopt(self, command: tuple[str, ...]) -> ServerProcess | None:
        """A healthy server of exactly this command line, left by an earlier process, is used as it is."""
        record = read_record(self.record_file)
        if record is None or record.process() is None:
            return None
        if record.command == command and self._probe.probe(Path(record.model)).readiness is Readiness.READY:
            logger.info("llm server {!r}: using llama-server pid {} started earlier", self._name, record.pid)
            self._kv = self._kv or kv_estimate(self.config, Path(record.model))
            uptime = max(0.0, time.time() - record.started_at)
            return ServerProcess(record, ProcessGroup(record.pgid, record.pid), None, time.monotonic() - uptime)
        logger.warning("llm server {!r}: stopping pid {}, started earlier with other settings", self._name, record.pid)
        self._stop_targets([Target(ProcessGroup(record.pgid, record.pid), None, "pid record")], None)
        return None

    def _start(self, binary: Path, model: Path, command: tuple[str, ...]) -> ServerProcess:
        self._clear_port(binary)
        self._kv = kv_estimate(self.config, model)
        launch = Launch(
            self._name, self.config, command, model, self.log_file, self.record_file, self._startups + 1,
            self.dies_with_parent,
        )  # fmt: skip
        spec = SpawnSpec(command, build_env(self.config), self.log_file, self.dies_with_parent)
        started = time.monotonic()
        server = launch_and_wait(launch, spec, self._probe, self._cancel, self._kv.problem)
        self._startups += 1
        logger.info(
            "LLM server healthy after {:.1f}s (startup #{}). ctx_size={}, {}",
            time.monotonic() - started, self._startups, self.config.context_length, self._kv.text(),
        )  # fmt: skip
        return server

    def _clear_port(self, binary: Path) -> None:
        """Stop unrecorded servers of this config on our port; refuse when anything else holds it."""
        strays = find_targets(None, None, binary, self.config.port)
        if strays:
            pids = [t.group.leader for t in strays]
            logger.warning("llm server {!r}: stopping unrecorded llama-server(s) {}", self._name, pids)
            self._stop_targets(strays, None)
        refuse_foreign_listener(self._name, self.config)

    def _forget_exited(self, server: ServerProcess) -> None:
        code = server.popen.wait() if server.popen is not None else None
        logger.warning(
            "llm server {!r}: pid {} exited on its own (code {}); last lines of {}:\n{}",
            self._name, server.record.pid, code, self.log_file, log_tail(self.log_file, 10),
        )  # fmt: skip
        remove_record(self.record_file, server.record.pid)
        self._server = None

    # -- use and idle --------------------------------------------------------------------------------------------

    def in_use(self) -> contextlib.AbstractContextManager[None]:
        """Marks an evaluation in flight: no idle stop until it ends; idle time counts from its end.

        Waits first while a GPU job holds the server stopped.
        """
        return self._usage.evaluation()

    @contextlib.contextmanager
    def held_stopped(self, drain_timeout_sec: float | None = None) -> Iterator[StopReport]:
        """Stop the server for a GPU-heavy job and keep it stopped until the block ends.

        Evaluations in flight finish first (up to ``drain_timeout_sec``, None: no bound); new ones wait, so no
        other thread can start the server under the job. Yields the verified stop report.
        """
        with self._usage.hold(drain_timeout_sec):
            yield self.stop()

    def idle_check_and_stop(self, now: float | None = None) -> StopReport | None:
        """Stop the server if it has been idle for ``idle_timeout_sec``; called from the daemon's loop.

        Returns the stop report, or None when nothing was stopped. Never waits for a start or stop under way.
        """
        if not self._lock.acquire(blocking=False):
            return None
        try:
            left = self.idle_seconds_left(now)
            if left is None or left > 0 or self._server is None or not self._server.alive():
                return None
            logger.info("llm server {!r}: idle for {:g}s, stopping it", self._name, self.config.idle_timeout_sec)
            return self.stop()
        finally:
            self._lock.release()

    # -- stop ----------------------------------------------------------------------------------------------------

    def stop(self, timeout_sec: float | None = None) -> StopReport:
        """Stop this config's server, whoever started it: SIGTERM the group, SIGKILL after ``timeout_sec``.

        Returns once the group is gone and the port is free. Nothing running: a no-op (one debug line). A foreign
        process on the port is never signalled: PortInUse.
        """
        self._cancel.set()  # a start under way gives up at its next poll rather than at its deadline
        with self._lock:
            self._cancel.clear()
            targets = self._find_targets()
            if not targets:
                refuse_foreign_listener(self._name, self.config)
                logger.debug("llm server {!r}: stop requested, nothing runs", self._name)
                return StopReport(self._name, stopped=False)
            self._state = "stopping"
            try:
                report = self._stop_targets(targets, timeout_sec)
            finally:
                self._state = "stopped"
            logger.info(report.summary())
            return report

    def _find_targets(self) -> list[Target]:
        server = self._server
        if server is not None and not server.alive():
            self._forget_exited(server)
            server = None
        binary = self._binary_for_scan()
        return find_targets(server, read_record(self.record_file), binary, self.config.port)

    def _binary_for_scan(self) -> Path | None:
        try:
            return resolve_binary(self.config, self.settings.root, self._name)
        except BinaryNotFound:
            record = read_record(self.record_file)
            return Path(record.binary) if record else None

    def _stop_targets(self, targets: list[Target], timeout_sec: float | None) -> StopReport:
        timeout = self.config.stop_timeout_sec if timeout_sec is None else timeout_sec
        try:
            return stop_targets(self._name, self.config, targets, timeout)
        finally:
            if self._server is not None and not self._server.alive():
                self._server = None
            remove_record(self.record_file)

    def status(self) -> ServerStatus:
        """A snapshot; never waits for a start or stop under way. Sees servers started by other processes too."""
        server = self._server
        owner, pid, uptime, startups = who_runs(server, self.record_file, self._startups)
        state: State = self._state if self._state in ("starting", "stopping") else "running" if pid else "stopped"
        # Only an estimate already made (at start, or asked for): reading a GGUF header loads the gguf package
        # (numpy, ~12 MB), which a daemon polling its status while the server is stopped should not carry.
        kv = self._kv
        return ServerStatus(
            name=self._name, state=state, healthy=pid is not None and self.is_healthy(), pid=pid,
            host=self.config.host, port=self.config.port, base_url=self.base_url, owner=owner, uptime_sec=uptime,
            startups=startups, model=server.record.model if server else self._model_name,
            ctx_size=self.config.context_length, kv_cache_est_bytes=kv.bytes_per_gpu if kv else None,
            rss_bytes=process_rss(pid) if pid else None, in_flight=self._usage.in_flight,
            idle_seconds_left=self.idle_seconds_left(), log_file=str(self.log_file),
        )  # fmt: skip

    def kv_estimate(self) -> KvEstimate | None:
        """The KV-cache estimate of the configured model (computed from its GGUF header on demand)."""
        if self._kv is None:
            model = self._model_name
            self._kv = kv_estimate(self.config, Path(model)) if model else None
        return self._kv


# ---------------------------------------------------------------------------------------------------------------
# One manager per (config, server name)
# ---------------------------------------------------------------------------------------------------------------

_managers: dict[tuple[Path, Path, str], LLMLifecycleManager] = {}
_managers_lock = threading.Lock()


def get_lifecycle_manager(settings: Settings | None = None, name: str = "primary") -> LLMLifecycleManager:
    """The manager of server ``name`` of this config, shared by every thread of the process."""
    settings = settings or load_settings()
    key = (settings.config_dir, settings.root, name)
    with _managers_lock:
        manager = _managers.get(key)
        if manager is None:
            manager = _managers[key] = LLMLifecycleManager(settings, name)
        return manager


@atexit.register
def _stop_at_exit() -> None:
    # PR_SET_PDEATHSIG would SIGKILL them as we exit; a SIGTERM first lets them shut down cleanly.
    with _managers_lock:
        managers = list(_managers.values())
    for manager in managers:
        server = manager._server
        if server is not None and server.popen is not None and manager.dies_with_parent:
            with contextlib.suppress(Exception):
                manager.stop()

"""The daemon: ``run() = start(); main loop; shutdown()``.

Threads: the watchdog observer only queues hints; worker threads run evaluations; everything else happens in
``loop_once`` on the main thread, which sleeps in ``Waker.wait`` until a hint, an outcome, a signal or the next
deadline (settle, retry, rescan, idle tick). Signal handlers only set flags: the first SIGTERM/SIGINT stops
intake and lets running evaluations finish (bounded by ``drain_timeout``), a second one forces; SIGHUP reloads
the config. The LLM server's idle check runs from the loop, so it is stopped when idle and never mid-evaluation
(the lifecycle manager knows what is in use).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from loguru import logger

import handlers
from watcher.config import Settings
from watcher.core import affinity
from watcher.daemon import transitions
from watcher.daemon.alerts import Alerts
from watcher.daemon.execute import Job, Outcome, run_job
from watcher.daemon.metrics import Metrics
from watcher.daemon.scheduler import Scheduler
from watcher.daemon.sdnotify import Notifier, watchdog_interval
from watcher.daemon.server import Lifecycle, idle_deadline
from watcher.daemon.signals import Flags, terminal_hung_up
from watcher.daemon.sizing import MIN_THREADS, default_drain_timeout, worker_count
from watcher.daemon.status import Load, StateWriter
from watcher.daemon.wakeup import Waker
from watcher.daemon.workers import EvaluationSlots, WorkerPool
from watcher.errors import WatcherError
from watcher.exitcodes import ExitCode
from watcher.intake.observer import FolderObserver
from watcher.intake.seen_outputs import SEEN_NAME, SeenOutputs
from watcher.judging.protocols import StepJudge
from watcher.requests.contract import Registry
from watcher.spool.folders import Spool, SpoolPaths
from watcher.spool.lock import LOCK_NAME, SpoolLock

TICK_SEC = 1.0  # idle check, status line and seen-hash flush, while there is work or a server to watch
# With nothing queued, in flight or running, a tick has nothing to do but refresh the status file; new work wakes
# the loop through the waker and brings back the short tick. Measured: a 1 s tick cost ~1% of a core when idle.
QUIET_TICK_SEC = 30.0


class Daemon:
    def __init__(
        self,
        settings: Settings,
        judge: StepJudge,
        lifecycle: Lifecycle,
        *,
        reload: Callable[[], Settings] | None = None,
        judge_factory: Callable[[Settings], StepJudge] | None = None,
        drain_timeout: float | None = None,
        notifier: Notifier | None = None,
        registry: Registry | None = None,
    ) -> None:
        self.settings, self.judge, self.lifecycle = settings, judge, lifecycle
        self._reload_settings, self._judge_factory = reload, judge_factory
        self.drain_timeout = drain_timeout if drain_timeout is not None else default_drain_timeout(settings)
        self.flags = Flags()
        self.ready = threading.Event()  # set once the start-up scan is done (what READY=1 tells systemd)
        self.waker = Waker()
        self.notifier = notifier or Notifier()
        self.registry = registry or handlers.registry()
        self.spool = Spool(SpoolPaths.from_settings(settings))
        self.metrics = Metrics()
        self.alerts = Alerts(settings.watcher.notify, self.metrics, settings.root)
        self.seen = SeenOutputs(self.spool.paths.state / SEEN_NAME)
        self.lock = SpoolLock(self.spool.paths.state / LOCK_NAME)
        self.intake = FolderObserver(self.waker.set, polling=settings.watcher.intake.polling_observer)
        self.workers = worker_count(settings)
        self.threads = max(self.workers, MIN_THREADS)
        self.slots = EvaluationSlots(self.workers)
        self.pool: WorkerPool[Job, Outcome] | None = None
        self.scheduler = self._make_scheduler()
        self.state = StateWriter(settings, self.metrics, self.notifier, lifecycle.status, self.load)
        self._watchdog_every = watchdog_interval()
        self._next_rescan = self._next_tick = self._next_watchdog = 0.0
        self._next_idle: float | None = None
        self._tick_every = TICK_SEC
        self._unpin: Callable[[], None] = lambda: None

    def _make_scheduler(self) -> Scheduler:
        return Scheduler(
            settings=self.settings,
            judge=self.judge,
            registry=self.registry,
            spool=self.spool,
            seen=self.seen,
            metrics=self.metrics,
            submit=self._submit,
            busy=self._busy,
            # One job queued behind each thread: no thread waits for the main loop, and in a burst the loop claims
            # files in batches instead of one per finished job. Queued jobs have not called the judge yet.
            capacity=2 * self.threads + self.workers,
        )

    # -- run ---------------------------------------------------------------------------------------------------

    def run(self, install_signals: bool = True) -> int:
        """Start, loop until stopped, shut down; the exit code. Raises AlreadyRunning before doing anything."""
        # Signals are flags from before the start: one that comes while starting up is acted on once started.
        if install_signals and threading.current_thread() is threading.main_thread():
            self.flags.install(self.waker)
        try:
            self.start()
        except BaseException:
            self.flags.restore()
            raise
        try:
            while not self.flags.stop:
                self.waker.wait(self._iterate())
        finally:
            code = self.shutdown()
        return code

    def start(self) -> None:
        self.lock.acquire()
        try:
            # Before any thread is started: workers and the inotify reader inherit the pin (see watcher.affinity).
            self._unpin = affinity.pin_this_thread(self.settings.watcher.limits.cpu)
            self._start()
        except BaseException:
            self.intake.stop()
            self._unpin()
            self.lock.release()
            raise

    def _start(self) -> None:
        self.spool.ensure()
        self.pool = WorkerPool(self.threads, self._work, self.waker.set)
        recovered = self.scheduler.recover()
        # Watch before scanning: a file that arrives during the scan is then seen by one or the other.
        self.intake.start(self.scheduler.watchset.folders())
        now = time.monotonic()
        self.scheduler.rescan()
        self._next_rescan = now + self.settings.watcher.intake.rescan_interval_sec
        self.state.started()
        logger.info(
            "watching {} with {} worker(s); {} claimed request(s) to finish, {} file(s) found",
            self.spool.paths.requests,
            self.workers,
            recovered,
            self.scheduler.waiting_files,
        )
        self.ready.set()
        self.notifier.ready(self.state.status_line())

    def loop_once(self, now: float | None = None) -> float:
        """One iteration; returns the seconds until something is due (the caller waits at most that long)."""
        now = time.monotonic() if now is None else now
        if self.flags.reload:
            self.reload()
        for path, complete in self.intake.drain():
            self.scheduler.hint(path, complete)
        if now >= self._next_rescan:
            self.scheduler.rescan()
            self._next_rescan = now + self.settings.watcher.intake.rescan_interval_sec
        self._collect(now)
        self.scheduler.update(now)
        self.scheduler.pump(now)
        if self._tick_every > TICK_SEC and self._active():
            self._next_tick = now  # work arrived while ticking slowly
        self._periodic(now)
        deadlines = [self._next_tick, self._next_rescan, self.scheduler.next_deadline()]
        deadlines += [self.scheduler.next_retry(), self._next_watchdog if self._watchdog_every else None]
        deadlines.append(self._next_idle)
        return max(0.0, min(d for d in deadlines if d is not None) - time.monotonic())

    def _iterate(self) -> float:
        try:
            return self.loop_once()
        except Exception:  # a file system hiccup must not end the daemon; the folders still hold everything
            logger.exception("main loop iteration failed; carrying on")
            return TICK_SEC

    def request_stop(self, force: bool = False) -> None:
        """Thread-safe stop: what SIGTERM does (force: what a second one does)."""
        self.flags.force = self.flags.force or force or self.flags.stop
        self.flags.stop = True
        self.waker.set()

    # -- internals -------------------------------------------------------------------------------------------

    def _work(self, job: Job) -> Outcome:
        return run_job(job, self.spool, self.slots)

    def _submit(self, job: Job) -> None:
        assert self.pool is not None
        self.pool.submit(job)

    def _busy(self) -> int:
        return self.pool.busy if self.pool is not None else 0

    def _collect(self, now: float) -> None:
        if self.pool is not None:
            self.scheduler.complete(self.alerts.outcomes(self.pool.results()), now)

    def _periodic(self, now: float) -> None:
        if self._watchdog_every and now >= self._next_watchdog:
            self.notifier.watchdog()
            self._next_watchdog = now + self._watchdog_every
        idle_due = self._next_idle is not None and now >= self._next_idle
        if now < self._next_tick and not idle_due:
            return
        try:
            self._count_stop(self.lifecycle.idle_check_and_stop())
        except WatcherError as exc:
            logger.error("idle check of the LLM server failed: {}", exc)
        self._next_idle = idle_deadline(self.lifecycle, now)
        was_active, active = self._tick_every == TICK_SEC, self._active()
        self._tick_every = TICK_SEC if active else QUIET_TICK_SEC
        self._next_tick = now + self._tick_every
        self.seen.flush()
        # Going quiet (the work done, the server stopped): write the status now, not at the next slow tick.
        self.state.tick(now, refresh=was_active and not active)

    def _active(self) -> bool:
        """Work queued or running, or a server whose idle stop is pending: the short tick keeps status current."""
        return self.queue_depth > 0 or self._busy() > 0 or self._next_idle is not None

    def _count_stop(self, report: object) -> None:
        """Lifecycle stop reports say whether a server was stopped; None means nothing was."""
        if report is not None and getattr(report, "stopped", True):
            self.state.server_stops += 1

    # -- reload and shutdown -----------------------------------------------------------------------------------

    def reload(self) -> None:
        self.flags.reload = False
        if terminal_hung_up():
            logger.info("SIGHUP: the terminal is gone; stopping")
            self.request_stop()
            return
        self.notifier.reloading()
        try:
            loaded = transitions.load(self)
            if loaded is None:
                self.scheduler.configure(self.settings, self.judge)  # what waits on a fault is tried again
            else:
                self._apply(*loaded)
        finally:
            # READY=1 ends the reload for systemd, with the new config in force or the old one kept (STATUS= then
            # names the fault).
            self.notifier.ready(self.state.status_line())

    def _apply(self, new: Settings, judge: StepJudge) -> None:
        self.settings, self.judge = new, judge
        self.scheduler.configure(new, self.judge)
        self.alerts.config = new.watcher.notify
        self.intake.restart(self.scheduler.watchset.folders(), polling=new.watcher.intake.polling_observer)
        self.scheduler.rescan()
        logger.info("config reloaded from {}", new.config_dir)

    def shutdown(self) -> int:
        """Stop intake, let running evaluations finish (bounded), stop the server; the exit code."""
        self.notifier.stopping()
        self.intake.stop()
        forced = False
        if self.pool is not None:
            self.slots.close()
            self.scheduler.cancel(self.pool.cancel_pending())
            logger.info("stopping: waiting for {} running evaluation(s)", self.slots.active)
            forced = transitions.drain(self)
            self.pool.close()
        try:
            self._count_stop(self.lifecycle.stop())
        except WatcherError as exc:
            logger.error("stopping the LLM server failed: {}", exc)
        self.seen.flush()
        self.state.stopped()
        self.flags.restore()
        self._unpin()
        self.lock.release()
        self.alerts.close()
        self.notifier.close()
        logger.info("stopped{}", " (forced: running evaluations abandoned, they stay claimed)" if forced else "")
        return ExitCode.INTERRUPTED if forced else ExitCode.OK

    def load(self) -> Load:
        waiting = tuple((str(path), step) for path, step in self.scheduler.waiting_steps.items())
        faults = self.scheduler.faults
        return Load(
            queue_depth=self.queue_depth, in_flight=self.slots.active, workers=self.workers,
            faults=faults.report(), fault_line=faults.line(), waiting_steps=waiting,
        )  # fmt: skip

    @property
    def queue_depth(self) -> int:
        """Files and jobs waiting: not yet claimed, claimed and waiting for a thread or for an evaluation slot."""
        waiting_for_slot = max(0, self._busy() - self.slots.active)
        return self.scheduler.depth + waiting_for_slot

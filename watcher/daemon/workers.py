"""A bounded pool of worker threads: jobs in, outcomes out, the main loop woken on each outcome.

Daemon threads on purpose: a forced shutdown (second signal) must not wait for an evaluation to return. A
normal shutdown waits for running jobs itself, with a deadline. Queued jobs that never started are handed back
by ``cancel_pending``; their files stay claimed and are finished on the next start.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

from loguru import logger

J = TypeVar("J")
R = TypeVar("R")


class WorkerPool(Generic[J, R]):
    def __init__(self, size: int, work: Callable[[J], R], wake: Callable[[], None]) -> None:
        self.size = size
        self._work = work
        self._wake = wake
        self._jobs: queue.SimpleQueue[J | None] = queue.SimpleQueue()
        self._results: queue.SimpleQueue[R] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._running = 0
        self._queued = 0
        self._threads = [
            threading.Thread(target=self._loop, name=f"watcher-worker-{i}", daemon=True) for i in range(size)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, job: J) -> None:
        with self._lock:
            self._queued += 1
        self._jobs.put(job)

    @property
    def busy(self) -> int:
        """Jobs submitted and not yet reported back (queued or running)."""
        with self._lock:
            return self._queued + self._running

    @property
    def running(self) -> int:
        with self._lock:
            return self._running

    def results(self) -> list[R]:
        out: list[R] = []
        while True:
            try:
                out.append(self._results.get_nowait())
            except queue.Empty:
                return out

    def cancel_pending(self) -> list[J]:
        """Take back jobs that have not started."""
        out: list[J] = []
        while True:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                break
            if job is not None:
                out.append(job)
        with self._lock:
            self._queued -= len(out)
        return out

    def close(self) -> None:
        for _ in self._threads:
            self._jobs.put(None)

    def join(self, timeout: float) -> None:
        for thread in self._threads:
            thread.join(timeout)

    def _loop(self) -> None:
        while (job := self._jobs.get()) is not None:
            with self._lock:
                self._queued -= 1
                self._running += 1
            try:
                self._results.put(self._work(job))
            except BaseException:  # the work function reports its own failures; this is a last resort
                logger.exception("worker job crashed")
            finally:
                with self._lock:
                    self._running -= 1
                self._wake()


class EvaluationSlots:
    """At most ``size`` handlers at once (the LLM's parallel slots); the file writes around them are not limited.

    The pool has more threads than slots, so a fast judge is not held up by the fsync of the previous decision.
    After ``close()`` nothing new starts: a job still waiting for a slot is handed back, unstarted.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self.active = 0
        self.closed = False
        self._condition = threading.Condition()

    def acquire(self) -> bool:
        with self._condition:
            while self.active >= self.size and not self.closed:
                self._condition.wait()
            if self.closed:
                return False
            self.active += 1
            return True

    def release(self) -> None:
        with self._condition:
            self.active -= 1
            self._condition.notify()

    def close(self) -> None:
        with self._condition:
            self.closed = True
            self._condition.notify_all()

"""Who uses a server and who holds it stopped: evaluations in flight, GPU jobs holding it, and its idle time.

One small lock, apart from the manager's start/stop lock, so marking an evaluation never waits for a start.
"""

from __future__ import annotations

import collections
import contextlib
import threading
import time
from collections.abc import Iterator

from watcher.errors import LLMServerError


class UsageGate:
    def __init__(self, server: str) -> None:
        self.server = server
        self.lock = threading.Lock()
        self._gate = threading.Condition(self.lock)  # signalled when the in-flight count or a hold changes
        self._holders: set[int] = set()  # threads inside hold()
        self._users: collections.Counter[int] = collections.Counter()  # threads inside evaluation(), nested counted
        self.in_flight = 0
        self.last_used = time.monotonic()

    def touch(self) -> None:
        with self.lock:
            self.last_used = time.monotonic()

    def idle_since(self) -> float | None:
        """When the last evaluation ended (monotonic); None while one is in flight."""
        with self.lock:
            return None if self.in_flight else self.last_used

    @contextlib.contextmanager
    def evaluation(self) -> Iterator[None]:
        """Marks an evaluation in flight; waits first while a GPU job holds the server stopped."""
        with self._gate:
            self._refuse_reentry("in_use()")
            self._gate.wait_for(lambda: not self._holders)
            self.in_flight += 1
            self._users[threading.get_ident()] += 1
        try:
            yield
        finally:
            with self._gate:
                self.in_flight -= 1
                self._users[threading.get_ident()] -= 1
                self._users += collections.Counter()  # drops the zero counts
                self.last_used = time.monotonic()
                self._gate.notify_all()

    @contextlib.contextmanager
    def hold(self, drain_timeout_sec: float | None) -> Iterator[None]:
        """Registers a GPU job: evaluations in flight finish first (bounded), new ones wait until it ends."""
        with self._gate:
            self._refuse_reentry("held_stopped()")
            self._holders.add(threading.get_ident())
            drained = self._gate.wait_for(lambda: self.in_flight == 0, timeout=drain_timeout_sec)
        try:
            if not drained:
                raise LLMServerError(self.server, f"evaluations still in flight after {drain_timeout_sec}s")
            yield
        finally:
            with self._gate:
                self._holders.discard(threading.get_ident())
                self._gate.notify_all()

    def wait_for_release(self) -> None:
        """Before a start: wait while a GPU job holds the server stopped (unless this thread was admitted first)."""
        with self._gate:
            self._refuse_reentry("ensure_running()")
            if self._users[threading.get_ident()]:
                return  # admitted before the hold: the hold waits for this evaluation, not the other way round
            self._gate.wait_for(lambda: not self._holders)

    def _refuse_reentry(self, what: str) -> None:
        # The holder waiting for its own release would wait forever: fail loudly instead.
        if threading.get_ident() in self._holders:
            raise LLMServerError(self.server, f"{what} called inside held_stopped() by the same thread")

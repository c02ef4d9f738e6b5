"""A wake-up call for the main loop that threads and signal handlers can both use: a self-pipe.

``wait(timeout)`` returns as soon as any thread calls ``set()``, or a signal arrives (the pipe is registered with
``signal.set_wakeup_fd``, so the C-level handler writes to it and no Python lock is taken inside a handler).
While a wake-up is pending, ``set()`` writes nothing: in a burst every event and every finished job calls it, and
one byte wakes the loop as well as thousands.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal


class Waker:
    def __init__(self) -> None:
        self._read, self._write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._pending = False  # a byte is in the pipe that wait() has not consumed yet

    def set(self) -> None:
        if self._pending:
            return
        self._pending = True
        # BlockingIOError: the pipe is full, so a wake-up is already pending.
        with contextlib.suppress(BlockingIOError):
            os.write(self._write, b"\0")

    def wait(self, timeout: float | None) -> bool:
        """Block until woken or ``timeout`` seconds pass; True when woken. Pending wake-ups are consumed."""
        ready, _, _ = select.select([self._read], [], [], None if timeout is None else max(0.0, timeout))
        if not ready:
            return False
        with contextlib.suppress(BlockingIOError):
            while os.read(self._read, 4096):
                pass
        # Cleared after the pipe is emptied, never before: a set() that found it still set was for work the caller
        # is about to look at, and one from now on writes again. (Cleared first, a byte written in between would be
        # emptied with the flag still set, and the next set() would write nothing into an empty pipe.)
        self._pending = False
        return True

    def wake_on_signals(self) -> int:
        """Make signals wake ``wait``; returns the previous wakeup fd (main thread only)."""
        return signal.set_wakeup_fd(self._write, warn_on_full_buffer=False)

    def close(self) -> None:
        for fd in (self._read, self._write):
            with contextlib.suppress(OSError):
                os.close(fd)

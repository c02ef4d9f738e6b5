"""Signals as flags: the handlers only record what was asked, the daemon's loop acts on it.

Logging and I/O are not safe inside a handler; the wakeup fd (``Waker.wake_on_signals``) wakes the loop
instead. SIGTERM and SIGINT ask for a stop, a second one forces it; SIGHUP asks for a config reload, unless it
means the terminal is gone.
"""

from __future__ import annotations

import errno
import os
import signal
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

from watcher.daemon.wakeup import Waker

SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


@dataclass
class Flags:
    stop: bool = False
    force: bool = False
    reload: bool = False
    _previous: dict[int, Any] = field(default_factory=dict, repr=False)

    def on_signal(self, signum: int, _frame: FrameType | None) -> None:
        if signum == signal.SIGHUP:
            self.reload = True
        else:
            self.force = self.stop
            self.stop = True

    def install(self, waker: Waker) -> None:
        """Main thread only: route SIGTERM, SIGINT and SIGHUP here and let them wake ``waker``."""
        waker.wake_on_signals()
        for signum in SIGNALS:
            self._previous[signum] = signal.signal(signum, self.on_signal)

    def restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        if self._previous:
            signal.set_wakeup_fd(-1)
        self._previous.clear()


def terminal_hung_up() -> bool:
    """SIGHUP also means "your terminal is gone" (tmux kill-session, a closed ssh session): stop then, not reload.

    A hung-up terminal answers EIO; no terminal at all (systemd) answers ENOTTY, and SIGHUP means reload.
    """
    for fd in (0, 1, 2):
        try:
            os.tcgetpgrp(fd)
        except OSError as exc:
            if exc.errno == errno.EIO:
                return True
    return False

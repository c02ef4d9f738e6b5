"""The systemd notify protocol, which is one datagram per message to ``$NOTIFY_SOCKET``.

READY=1 after the start-up scan, STATUS=<text>, WATCHDOG=1 from the main loop, STOPPING=1 on shutdown; on SIGHUP
RELOADING=1 with MONOTONIC_USEC=, then READY=1 once the reload is over (what ``Type=notify-reload`` expects). Without
``$NOTIFY_SOCKET`` (not under systemd, or tmux) every call is a no-op.
"""

from __future__ import annotations

import os
import socket
import time

from loguru import logger


class Notifier:
    def __init__(self, address: str | None = None) -> None:
        address = address if address is not None else os.environ.get("NOTIFY_SOCKET")
        # An address starting with "@" is in the abstract namespace, spelled with a leading NUL byte.
        self._address = "\0" + address[1:] if address and address.startswith("@") else address
        self._socket: socket.socket | None = None
        if self._address:
            self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)

    @property
    def enabled(self) -> bool:
        return self._socket is not None

    def send(self, *fields: str) -> bool:
        if self._socket is None or self._address is None:
            return False
        try:
            self._socket.sendto("\n".join(fields).encode("utf-8"), self._address)
        except OSError as exc:
            logger.warning("sd_notify to {} failed: {}", self._address, exc)
            return False
        return True

    def ready(self, status: str = "") -> bool:
        return self.send("READY=1", f"STATUS={status}") if status else self.send("READY=1")

    def reloading(self) -> bool:
        # systemd matches the reload to the signal it sent by this timestamp (CLOCK_MONOTONIC, microseconds).
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        return self.send("RELOADING=1", f"MONOTONIC_USEC={usec}")

    def status(self, text: str) -> bool:
        return self.send(f"STATUS={text}")

    def watchdog(self) -> bool:
        return self.send("WATCHDOG=1")

    def stopping(self) -> bool:
        return self.send("STOPPING=1")

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None


def watchdog_interval() -> float | None:
    """How often to send WATCHDOG=1: half of systemd's ``WatchdogSec``, when it applies to this process."""
    usec = os.environ.get("WATCHDOG_USEC", "")
    pid = os.environ.get("WATCHDOG_PID", "")
    if not usec.isdigit() or (pid.isdigit() and int(pid) != os.getpid()):
        return None
    return int(usec) / 2_000_000

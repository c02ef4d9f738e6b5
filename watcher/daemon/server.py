"""What the daemon needs from the LLM server's lifecycle, and a stand-in for judges that need no server."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

IDLE_RECHECK_SEC = 0.1


class Lifecycle(Protocol):
    """What the daemon needs from the LLM lifecycle manager."""

    def idle_check_and_stop(self, now: float | None = None) -> Any: ...

    def stop(self) -> Any: ...

    def status(self) -> Any: ...  # a mapping, or an object with as_dict()


class NullLifecycle:
    """For judges that need no server."""

    def idle_check_and_stop(self, now: float | None = None) -> None:
        return None

    def stop(self) -> None:
        return None

    def status(self) -> Mapping[str, Any]:
        return {"state": "none"}


def idle_deadline(lifecycle: Lifecycle, now: float) -> float | None:
    """When the server's idle stop is due, so the loop wakes for it rather than at its next tick."""
    seconds_left = getattr(lifecycle, "idle_seconds_left", None)  # optional in the protocol
    left = seconds_left() if callable(seconds_left) else None
    # At least IDLE_RECHECK_SEC ahead: a stop that could not happen now must not spin the loop.
    return now + max(left, IDLE_RECHECK_SEC) if isinstance(left, int | float) else None

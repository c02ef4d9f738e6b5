"""What the daemon needs from the LLM server's lifecycle, and a stand-in for judges that need no server."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol


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

"""What users of a server need from its lifecycle, so each can be built and tested with a stand-in."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Protocol


class ServerLease(Protocol):
    """What an evaluation needs from the LLM lifecycle: a running server and a way to say it is in use."""

    @property
    def name(self) -> str: ...

    @property
    def base_url(self) -> str: ...

    def ensure_running(self) -> None: ...

    def in_use(self) -> AbstractContextManager[None]: ...

"""Interfaces between the parts, so each can be built and tested with a stand-in for the others."""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Protocol


class ServerLease(Protocol):
    """What an evaluation needs from the LLM lifecycle: a running server and a way to say it is in use."""

    @property
    def name(self) -> str: ...

    @property
    def base_url(self) -> str: ...

    def ensure_running(self) -> None: ...

    def in_use(self) -> AbstractContextManager[None]: ...


class StepJudge(Protocol):
    """Judges one step output file; returns the decision record as JSON-ready data.

    The record has at least ``decision`` (proceed / retry / escalate) and ``parse_method``.
    """

    def judge(self, file: Path, step: str | None = None, *, request_id: str | None = None) -> Mapping[str, Any]: ...

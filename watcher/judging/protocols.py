"""What the daemon and the handlers need from a judge, so each can be built and tested with a stand-in."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol


class StepJudge(Protocol):
    """Judges one step output file; returns the body of its decision record as JSON-ready data.

    The body has at least ``decision`` (proceed / retry / escalate) and ``parse_method``.
    """

    def judge(self, file: Path, step: str | None = None, *, request_id: str | None = None) -> Mapping[str, Any]: ...

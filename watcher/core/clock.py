"""Timestamps: every time watcher writes into a file is UTC, ISO 8601, to the millisecond."""

from __future__ import annotations

import time
from datetime import UTC, datetime


def iso(epoch: float) -> str:
    """A Unix time as written into records: ``2026-12-04T12:00:00.000+00:00``."""
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds")


def now_iso() -> str:
    return iso(time.time())

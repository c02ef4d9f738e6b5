"""``watcher_decisions.jsonl``: one line per decision, appended next to the decision files.

Each line is written with a single ``os.write`` on a descriptor opened with ``O_APPEND``, then fsynced: the kernel
places the whole line at the end of the file in one step, so concurrent writers never interleave and a reader
tailing the file never sees half a line; a process killed with SIGKILL either wrote its line or did not. A line
that a crash kept from being written (the decision file was already durable) is added on the next start, when the
daemon finds the decision (``ensure``); ``has`` looks only at the file's tail, so that costs one small read.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from watcher.core.clock import now_iso

TAIL_BYTES = 256 * 1024
REASONING_CHARS = 500


def line_of(record: Mapping[str, Any], decision_file: Path) -> bytes:
    """The log line of a decision record: what was decided, about what, when, and where the full record is."""
    reasoning = record.get("reasoning")
    entry = {
        "timestamp": now_iso(),
        "request_id": record.get("request_id"),
        "request_type": record.get("request_type"),
        "kind": record.get("kind"),
        "decision": record.get("decision"),
        "source": record.get("source"),
        "reasoning": reasoning[:REASONING_CHARS] if isinstance(reasoning, str) else None,
        "decision_file": str(decision_file),
    }
    return (json.dumps(entry, separators=(",", ":"), ensure_ascii=False, allow_nan=False) + "\n").encode("utf-8")


def append(log: Path, line: bytes) -> None:
    """Append one whole line durably (one write call; a short write is reported, never completed piecemeal)."""
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        written = os.write(fd, line)
        if written != len(line):
            raise OSError(f"{log}: short append ({written} of {len(line)} bytes)")
        os.fsync(fd)
    finally:
        os.close(fd)


def has(log: Path, request_id: str) -> bool:
    """Whether a line for ``request_id`` is among the last lines of the log."""
    needle = json.dumps({"request_id": request_id}, separators=(",", ":"))[1:-1].encode("utf-8")
    try:
        with log.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - TAIL_BYTES))
            return needle in handle.read()
    except FileNotFoundError:
        return False

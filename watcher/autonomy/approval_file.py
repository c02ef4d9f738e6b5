"""The pipeline's approval file (``pending_approval.json``): its status, written back so the orchestrator sees it.

The orchestrator writes the file; the watcher changes only ``status`` and adds keys of its own (``watcher_*``,
``*_at``), never dropping one it did not write: the file is read, updated as a dict and replaced atomically
(temp file + rename), under a lock that the watcher's own writers share. A file whose ``request_id`` is no
longer the one being worked on was replaced by a newer request and is left alone.

    pending -> processing_by_watcher -> completed_by_watcher | failed_by_watcher
    pending -> rejected (``watcher deny``)
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from watcher.core.atomic import atomic_write_json
from watcher.core.clock import now_iso

PENDING = "pending"
PROCESSING = "processing_by_watcher"
COMPLETED = "completed_by_watcher"
FAILED = "failed_by_watcher"
REJECTED = "rejected"
_LOCK = threading.Lock()


def read(file: Path) -> dict[str, Any] | None:
    """The file as a dict; None when it is absent or not a JSON object (being rewritten, or not ours)."""
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def set_status(file: Path, request_id: str, status: str, expect: tuple[str, ...], **fields: Any) -> bool:
    """Move the file of ``request_id`` from one of ``expect`` to ``status``, adding ``fields``; False (nothing
    written) when the file holds another request or another status."""
    with _LOCK, _file_lock(file):
        data = read(file)
        if data is None or data.get("request_id") != request_id or data.get("status") not in expect:
            return False
        data["status"] = status
        data[f"{status}_at"] = now_iso()
        data.update(fields)
        atomic_write_json(file, data)
        return True


@contextlib.contextmanager
def _file_lock(file: Path) -> Iterator[None]:
    """An advisory lock beside the file, for watcher processes (the daemon and ``watcher deny``)."""
    with file.with_name(f".{file.name}.lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield

"""Ids: what a request, a step output or an advice is called in file names and records.

An id becomes a file name (``watcher_decisions/<id>.json``), so an id from outside must match ``ID_PATTERN``; an
id watcher makes is a short sha256 of the content, so the same content always gets the same id and is decided
once.
"""

from __future__ import annotations

import hashlib
import re

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
SAFE_ID_RE = re.compile(ID_PATTERN)
SHORT_HEX = 16  # hex digits of a content id: 64 bits, no collision in any spool's lifetime


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def short_id(sha256: str) -> str:
    """The id part made from a full sha256 hex digest."""
    return sha256[:SHORT_HEX]


def content_id(data: bytes) -> str:
    """The id of a file without one of its own: its content's short sha256."""
    return short_id(sha256_hex(data))


def step_output_id(step: str, sha256: str) -> str:
    """The id of one version of a step's output: ``step<N>-<short sha256>``."""
    return f"step{step}-{short_id(sha256)}"


def safe_name(text: str) -> str:
    """``text`` if it is a safe file name, else a digest of it: ids from requests never steer a path."""
    if SAFE_ID_RE.match(text) and ".." not in text:
        return text
    return "id-" + sha256_hex(text.encode("utf-8"))[:24]

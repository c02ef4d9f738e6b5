"""Content hashes of step outputs already judged, so a rewritten file with the same content is not judged again.

Kept in ``<state>/seen_outputs.json`` (newest last, bounded). It is a cache: the decision and error files are the
record, and the daemon checks them too, so a crash before a flush costs nothing but a file lookup.
"""

from __future__ import annotations

import json
from pathlib import Path

from loguru import logger

from watcher.core.atomic import atomic_write_json

SEEN_NAME = "seen_outputs.json"
DEFAULT_LIMIT = 10_000


class SeenOutputs:
    def __init__(self, file: Path, limit: int = DEFAULT_LIMIT) -> None:
        self.file = file
        self.limit = limit
        self._keys: dict[str, None] = {}
        self._dirty = False
        self._load()

    def _load(self) -> None:
        try:
            data = json.loads(self.file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return
        except (OSError, ValueError) as exc:
            logger.warning("{}: unreadable, starting empty: {}", self.file, exc)
            return
        if isinstance(data, list):
            self._keys = dict.fromkeys(str(key) for key in data[-self.limit :])

    def __contains__(self, key: str) -> bool:
        return key in self._keys

    def add(self, key: str) -> None:
        self._keys.pop(key, None)
        self._keys[key] = None
        while len(self._keys) > self.limit:
            del self._keys[next(iter(self._keys))]
        self._dirty = True

    def flush(self) -> None:
        if self._dirty:
            atomic_write_json(self.file, list(self._keys), durable=False)
            self._dirty = False

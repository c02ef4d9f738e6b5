"""File system events as hints: the observer thread only appends a path to a queue and wakes the main loop.

Nothing is decided here. Lost events (inotify overflow, a daemon that was down) are made up for by the start-up
scan and the periodic rescan; the polling observer serves filesystems without inotify (NFS, SMB).
"""

from __future__ import annotations

import logging
import os
from collections import deque
from collections.abc import Callable, Iterable
from pathlib import Path

from loguru import logger
from watchdog.events import (
    DirCreatedEvent,
    DirMovedEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver
from watchdog.observers.polling import PollingObserver

Hint = tuple[Path, bool]  # (path, complete): complete when it was renamed into place or closed after writing
EVENTS: list[type[FileSystemEvent]] = [
    FileCreatedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileClosedEvent,
    DirCreatedEvent,
    DirMovedEvent,
]


class HintHandler(FileSystemEventHandler):
    def __init__(self, sink: Callable[[Path, bool], None]) -> None:
        self._sink = sink

    def on_any_event(self, event: FileSystemEvent) -> None:
        moved = event.event_type == "moved"
        path = os.fsdecode(event.dest_path if moved else event.src_path)
        self._sink(Path(path), moved or event.event_type == "closed")


class Intake:
    """Watches folders (path, recursive) and collects hints until the main loop drains them."""

    def __init__(self, wake: Callable[[], None], *, polling: bool = False) -> None:
        self._wake = wake
        self._polling = polling
        self._hints: deque[Hint] = deque()
        self._observer: BaseObserver | None = None

    def _put(self, path: Path, complete: bool) -> None:
        self._hints.append((path, complete))
        self._wake()

    def start(self, folders: Iterable[tuple[Path, bool]]) -> None:
        folders = list(folders)
        observer: BaseObserver = PollingObserver() if self._polling else Observer()
        handler = HintHandler(self._put)
        for folder, recursive in folders:
            folder.mkdir(parents=True, exist_ok=True)
            observer.schedule(handler, str(folder), recursive=recursive, event_filter=EVENTS)
        observer.daemon = True
        observer.start()
        self._observer = observer
        logger.debug("watching {} ({})", [str(f) for f, _ in folders], type(observer).__name__)

    def stop(self) -> None:
        if self._observer is not None:
            # watchdog logs an error when its reader thread races the stop; nothing is lost by it.
            emitter_log = logging.getLogger("watchdog.observers.inotify")
            emitter_log.disabled = True
            try:
                self._observer.stop()
                self._observer.join(timeout=5)
            finally:
                emitter_log.disabled = False
            self._observer = None

    def restart(self, folders: Iterable[tuple[Path, bool]], *, polling: bool) -> None:
        self.stop()
        self._polling = polling
        self.start(folders)

    def drain(self) -> list[Hint]:
        out: list[Hint] = []
        while self._hints:
            out.append(self._hints.popleft())
        return out

    def __len__(self) -> int:
        return len(self._hints)

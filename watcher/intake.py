"""File system events as hints: the observer thread only appends a path to a queue and wakes the main loop.

Nothing is decided here. Lost events (inotify overflow, a daemon that was down) are made up for by the start-up
scan and the periodic rescan; the polling observer serves filesystems without inotify (NFS, SMB).
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections import deque
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TypeVar

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
from watchdog.utils.delayed_queue import DelayedQueue

T = TypeVar("T")
Hint = tuple[Path, bool]  # (path, complete): complete when it was renamed into place or closed after writing
EVENTS: list[type[FileSystemEvent]] = [
    FileCreatedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileClosedEvent,
    DirCreatedEvent,
    DirMovedEvent,
]


class PromptDelayedQueue(DelayedQueue[T]):
    """watchdog's queue that pairs IN_MOVED_FROM with IN_MOVED_TO, without holding up other events.

    watchdog holds each IN_MOVED_FROM for half a second, waiting for its IN_MOVED_TO, and hands out nothing else
    meanwhile. Every claim (a rename from the spool to processing/, a folder watched on its own) leaves such an
    unpaired half behind, so each request would wait 0.5 s behind the previous one's claim. Here a held event
    holds up only itself: events that are due pass it. Their order changes, which hints do not mind.
    """

    def get(self) -> T | None:
        with self._not_empty:
            while True:
                while not self._queue and not self._closed:
                    self._not_empty.wait()
                if self._closed:
                    return None
                now = time.monotonic()
                wake_at = math.inf
                for index, (item, inserted, delayed) in enumerate(self._queue):
                    due = inserted + self.delay if delayed else now
                    if due <= now:
                        del self._queue[index]
                        return item
                    wake_at = min(wake_at, due)
                self._not_empty.wait(wake_at - now)


def prompt_move_events() -> None:
    """Use PromptDelayedQueue for inotify move pairing, in the watchdog versions whose queue it knows."""
    try:
        from watchdog.observers import inotify_move_event_grouper as grouper
    except ImportError:  # other platforms, or a watchdog without this module: events may come 0.5 s late
        return
    probe: DelayedQueue[None] = DelayedQueue(0.0)
    if all(hasattr(probe, name) for name in ("_queue", "_not_empty", "_closed", "delay")):
        grouper.DelayedQueue = PromptDelayedQueue  # type: ignore[attr-defined]


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
        prompt_move_events()
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

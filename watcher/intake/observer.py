"""File system events as hints: the observer thread only appends a path to a queue and wakes the main loop.

Nothing is decided here. Lost events (inotify overflow, a daemon that was down) are made up for by the start-up
scan and the periodic rescan; the polling observer serves filesystems without inotify (NFS, SMB).
"""

from __future__ import annotations

import logging
import os
import time
from collections import deque
from collections.abc import Callable, Iterable
from functools import cache
from pathlib import Path
from types import ModuleType
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
from watchdog.utils import UnsupportedLibcError
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
    meanwhile. A folder moved out of a recursive watch leaves such an unpaired half behind, and every event after
    it would wait. Here held events wait in their own queue, in the order they came (so in the order they are
    due), and other events pass them: their order changes, which hints do not mind. ``find`` and ``remove``, which
    watchdog uses only to pair an IN_MOVED_TO with its held IN_MOVED_FROM, search the held events alone, so an
    arrival does not search the events not yet handed out.
    """

    def __init__(self, delay: float) -> None:
        super().__init__(delay)
        self._held: deque[tuple[T, float]] = deque()  # (event, due)

    def put(self, element: T, *, delay: bool = False) -> None:
        with self._lock:
            if delay:
                self._held.append((element, time.monotonic() + self.delay))
            else:
                self._queue.append((element, 0.0, False))
            self._not_empty.notify()

    def get(self) -> T | None:
        with self._not_empty:
            while not self._closed:
                now = time.monotonic()
                if self._held and self._held[0][1] <= now:
                    return self._held.popleft()[0]
                if self._queue:
                    return self._queue.popleft()[0]
                self._not_empty.wait(self._held[0][1] - now if self._held else None)
            return None

    def clear(self) -> None:
        with self._lock:
            self._queue.clear()
            self._held.clear()

    def find(self, predicate: Callable[[T], bool]) -> T | None:
        with self._lock:
            return next((element for element, _ in self._held if predicate(element)), None)

    def remove(self, predicate: Callable[[T], bool]) -> T | None:
        with self._lock:
            for index, (element, _) in enumerate(self._held):
                if predicate(element):
                    del self._held[index]
                    return element
        return None


def prompt_move_events() -> None:
    """Use PromptDelayedQueue for inotify move pairing, in the watchdog versions whose queue it knows."""
    try:
        from watchdog.observers import inotify_move_event_grouper as grouper
    except ImportError:  # other platforms, or a watchdog without this module: events may come 0.5 s late
        return
    probe: DelayedQueue[None] = DelayedQueue(0.0)
    if all(hasattr(probe, name) for name in ("_queue", "_lock", "_not_empty", "_closed", "delay")):
        grouper.DelayedQueue = PromptDelayedQueue  # type: ignore[attr-defined]


@cache
def inotify_arrivals() -> ModuleType | None:
    """``watcher.arrivals``, or None where there is no inotify (the platform's observer is used instead)."""
    try:
        from watcher.intake import inotify as arrivals
    except (ImportError, UnsupportedLibcError):
        return None
    return arrivals


def direct_dispatch(observer: BaseObserver, handler: HintHandler) -> None:
    arrivals = inotify_arrivals()
    if arrivals is not None:  # else the observer's own thread dispatches
        arrivals.dispatch_directly(observer, handler.dispatch)


def make_observer(polling: bool) -> BaseObserver:
    if polling:
        return PollingObserver()
    arrivals = inotify_arrivals()
    return arrivals.arrivals_observer() if arrivals is not None else Observer()


class HintHandler(FileSystemEventHandler):
    def __init__(self, sink: Callable[[Path, bool], None]) -> None:
        self._sink = sink

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type == "moved":
            if event.dest_path:  # empty: moved out of the watched folders (full events), nothing to look at
                self._sink(Path(os.fsdecode(event.dest_path)), True)
            return
        self._sink(Path(os.fsdecode(event.src_path)), event.event_type == "closed")


class FolderObserver:
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
        observer = make_observer(self._polling)
        handler = HintHandler(self._put)
        for folder, recursive in folders:
            folder.mkdir(parents=True, exist_ok=True)
            observer.schedule(handler, str(folder), recursive=recursive, event_filter=EVENTS)
        direct_dispatch(observer, handler)
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

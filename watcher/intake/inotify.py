"""inotify for the spool: arrivals only. Linux only; ``watcher.intake`` falls back to watchdog's observer elsewhere."""

from __future__ import annotations

import inspect
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass

from watchdog.events import FileSystemEvent
from watchdog.observers.api import BaseObserver
from watchdog.observers.inotify import InotifyEmitter, InotifyObserver, InotifyWatchGroup
from watchdog.observers.inotify_c import InotifyConstants, Mask
from watchdog.observers.inotify_move_event_grouper import GroupedInotifyEvent, PathedInotifyEvent


class PassThrough:
    """Takes the place of watchdog's move-event grouper in a folder watched on its own: with no IN_MOVED_FROM
    there is nothing to pair, so each event is delivered at once, on the inotify reader's thread, instead of
    being queued for the emitter's thread to pick up (a thread hop less per event). ``read_event`` only waits
    for the close, so the emitter's own loop idles."""

    def __init__(self, deliver: Callable[[PathedInotifyEvent], None]) -> None:
        self._deliver = deliver
        self._closed = threading.Event()

    def put_event(self, event: PathedInotifyEvent) -> None:
        self._deliver(event)

    def read_event(self) -> GroupedInotifyEvent | None:
        self._closed.wait()
        return None

    def get_queued_moved_from_event(self, cookie: int) -> PathedInotifyEvent | None:
        return None

    def discard_pending_events(self) -> None:
        return None

    def close(self) -> None:
        self._closed.set()


# The watchdog versions whose watch group keeps its grouper in this field (and starts watching in __post_init__).
PASS_THROUGH = "_move_event_grouper" in getattr(InotifyWatchGroup, "__dataclass_fields__", {})


@dataclass
class PassThroughWatchGroup(InotifyWatchGroup):
    """A watch group whose events skip the grouper's queue (see PassThrough); set up before it starts watching."""

    deliver: Callable[[PathedInotifyEvent], None] | None = None

    def __post_init__(self) -> None:
        assert self.deliver is not None
        self._move_event_grouper = PassThrough(self.deliver)  # type: ignore[assignment]
        super().__post_init__()


class ArrivalEmitter(InotifyEmitter):
    """inotify for a folder watched on its own sees arrivals only: no IN_MOVED_FROM, so no event to pair.

    Every claim renames a request out of the spool. Its IN_MOVED_FROM would be held half a second, waiting for an
    IN_MOVED_TO that never comes (processing/ is not watched), and every later IN_MOVED_TO searches the held ones
    for its partner: in a burst, hundreds of held events, searched once per arrival. What is moved away needs no
    hint. An IN_MOVED_TO is then always unpaired; it is reported as a move (with no source), so a file renamed
    into the spool counts as renamed into place, whether it came from the spool or from another folder.
    Recursive watches keep both halves: moves inside the tree are paired and folders moved in are walked.
    """

    def get_event_mask_from_filter(self) -> Mask:
        mask = super().get_event_mask_from_filter()
        return mask if self.watch.is_recursive else Mask(mask & ~InotifyConstants.IN_MOVED_FROM)

    # Set by ``dispatch_directly``: events go straight to the one handler instead of through the observer's queue
    # and thread; for a folder watched on its own, on the inotify reader's thread (PassThrough). Hints are cheap
    # and thread-safe, and each hop less is ~0.05 ms less per request.
    direct: Callable[[FileSystemEvent], None] | None = None

    def on_thread_start(self) -> None:
        if self.direct is None or self.watch.is_recursive or not PASS_THROUGH:
            super().on_thread_start()
            return
        self._delivering = True  # before the group starts watching: its first events may come at once
        self._inotify = PassThroughWatchGroup(
            self._inotify_fd,
            os.fsencode(self.watch.path),
            is_recursive=False,
            event_mask=self.get_event_mask_from_filter(),
            follow_symlink=self.watch.follow_symlink,
            deliver=self._deliver,
        )

    _delivering = False

    def _deliver(self, event: PathedInotifyEvent) -> None:
        # On the inotify reader's thread; the emitter's lock keeps it apart from a stop, as queue_events does.
        if event.ev.is_delete_self:
            # The folder itself is gone: there is nothing to hint, and watchdog's answer, stopping this emitter,
            # would wait here for the watch group's lock, which this thread holds while it delivers.
            return
        with self._lock:
            if self._delivering:
                self.build_and_queue_event(event)

    def on_thread_stop(self) -> None:
        with self._lock:
            self._delivering = False
        super().on_thread_stop()

    def build_and_queue_event(self, event: GroupedInotifyEvent, *, full_events: bool = False) -> None:
        super().build_and_queue_event(event, full_events=full_events or not self.watch.is_recursive)

    def queue_event(self, event: FileSystemEvent) -> None:
        wanted = self.watch.event_filter
        if self.direct is None:
            super().queue_event(event)
        elif wanted is None or any(isinstance(event, kind) for kind in wanted):
            self.direct(event)


def dispatch_directly(observer: BaseObserver, handler: Callable[[FileSystemEvent], None]) -> None:
    """Hand every event of ``observer``'s inotify watches to ``handler``, not through the observer's thread; call
    it after scheduling and before starting the observer, when ``handler`` is the only handler of every watch."""
    for emitter in observer.emitters:
        if isinstance(emitter, ArrivalEmitter):
            emitter.direct = handler


def arrivals_observer() -> BaseObserver:
    """watchdog's inotify observer with ``ArrivalEmitter`` for each watch, in the watchdog versions whose emitter
    it knows (else the plain one: claims are then held and searched, and arrivals from other folders settle)."""
    observer = InotifyObserver()
    build = getattr(InotifyEmitter, "build_and_queue_event", None)
    knows = build is not None and "full_events" in inspect.signature(build).parameters
    if knows and hasattr(observer, "_emitter_class"):  # watchdog has no parameter for the emitter class
        observer._emitter_class = ArrivalEmitter
    return observer

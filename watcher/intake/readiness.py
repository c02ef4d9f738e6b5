"""When may a file be read? Not while its producer is still writing it.

A file is ready when one of these holds for its current size, mtime and inode (its signature):
- a "complete" hint came for it: it was renamed into place, or closed after writing (inotify close-write);
- the signature has not changed for ``settle_sec`` (observed here, or by its mtime's age).
A file that was read and did not parse waits for a change; when none comes within ``grace_sec``, the reader is
told to reject it. Non-regular entries (directories, symlinks) are ready at once: the reader rejects them unread.

Work per file is O(1) per hint: new hints go to a dirty set, waiting files sit in a deadline heap.
"""

from __future__ import annotations

import heapq
import os
import stat
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

Sig = tuple[int, int, int]


def signature(info: os.stat_result) -> Sig:
    return (info.st_size, info.st_mtime_ns, info.st_ino)


@dataclass
class Entry:
    sig: Sig | None = None
    changed_at: float = 0.0
    mtime: float = 0.0
    complete_hint: bool = False
    complete_sig: Sig | None = None
    failed_sig: Sig | None = None
    state: str = "dirty"  # dirty | waiting | ready
    generation: int = 0


class Settler:
    def __init__(self, settle_sec: float, grace_sec: float, wall: Callable[[], float] = time.time) -> None:
        self.settle_sec = settle_sec
        self.grace_sec = grace_sec
        self._wall = wall
        self._entries: dict[Path, Entry] = {}
        self._dirty: OrderedDict[Path, None] = OrderedDict()
        self._ready: OrderedDict[Path, None] = OrderedDict()
        self._heap: list[tuple[float, int, Path]] = []
        self._processed: dict[Path, Sig] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, path: Path) -> bool:
        return path in self._entries

    def hint(self, path: Path, *, complete: bool = False) -> None:
        entry = self._entries.setdefault(path, Entry())
        entry.complete_hint = entry.complete_hint or complete
        if entry.state != "ready":
            entry.state = "dirty"
            self._dirty[path] = None

    def update(self, now: float) -> None:
        """Re-check files whose deadline passed and files with fresh hints."""
        while self._heap and self._heap[0][0] <= now:
            _, generation, path = heapq.heappop(self._heap)
            entry = self._entries.get(path)
            if entry is not None and entry.state == "waiting" and entry.generation == generation:
                entry.state = "dirty"
                self._dirty[path] = None
        while self._dirty:
            path, _ = self._dirty.popitem(last=False)
            self._classify(path, now)

    def take(self, limit: int) -> list[Path]:
        """Up to ``limit`` ready files, oldest hint first; the caller reports back with done() or failed()."""
        out: list[Path] = []
        while self._ready and len(out) < limit:
            path, _ = self._ready.popitem(last=False)
            out.append(path)
        for path in out:
            self._entries[path].state = "taken"
        return out

    @property
    def ready_count(self) -> int:
        return len(self._ready)

    def next_deadline(self) -> float | None:
        return self._heap[0][0] if self._heap else None

    def done(self, path: Path, sig: Sig | None = None) -> None:
        """Forget a file; with ``sig``, remember it was handled so the same content is not offered again."""
        self._entries.pop(path, None)
        self._dirty.pop(path, None)
        self._ready.pop(path, None)
        if sig is not None:
            self._processed[path] = sig

    def mark_processed(self, path: Path, sig: Sig) -> None:
        """Content with this signature was handled; later hints for it are dropped (the entry stays)."""
        self._processed[path] = sig

    def failed(self, path: Path, now: float) -> bool:
        """The file did not parse. True: it has been unchanged for the grace period, reject it now."""
        entry = self._entries.get(path)
        if entry is None or entry.sig is None:
            return True
        age = self._stable_for(entry, now)
        if age >= self.grace_sec:
            return True
        entry.failed_sig = entry.sig
        self._wait(path, entry, now + self.grace_sec - age)
        return False

    def _classify(self, path: Path, now: float) -> None:
        entry = self._entries[path]
        try:
            info = os.lstat(path)
        except FileNotFoundError:
            self.done(path)
            return
        sig = signature(info)
        if self._processed.get(path) == sig:
            self.done(path, sig)
            return
        if sig != entry.sig:
            entry.sig, entry.changed_at, entry.mtime = sig, now, info.st_mtime
        if entry.complete_hint:
            entry.complete_sig, entry.complete_hint = sig, False
        stable = self._stable_for(entry, now)
        if entry.failed_sig == sig:
            # Unchanged since it failed to parse: offer it once more when the grace period is over.
            ready, wait = stable >= self.grace_sec, self.grace_sec - stable
        else:
            ready = not stat.S_ISREG(info.st_mode) or entry.complete_sig == sig or stable >= self.settle_sec
            wait = self.settle_sec - stable
        if ready:
            self._make_ready(path, entry)
        else:
            self._wait(path, entry, now + wait)

    def _stable_for(self, entry: Entry, now: float) -> float:
        return max(now - entry.changed_at, self._wall() - entry.mtime)

    def _make_ready(self, path: Path, entry: Entry) -> None:
        entry.state = "ready"
        self._ready[path] = None

    def _wait(self, path: Path, entry: Entry, deadline: float) -> None:
        entry.state = "waiting"
        entry.generation += 1
        heapq.heappush(self._heap, (deadline, entry.generation, path))

"""When a file may be read: complete hints, settling, the grace period for files that do not parse; events."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from tests.support.helpers import wait_until
from watcher.daemon.wakeup import Waker
from watcher.intake.observer import FolderObserver, PromptDelayedQueue
from watcher.intake.readiness import Settler

pytestmark = pytest.mark.timeout(30)
OLD = time.time() + 3600  # a wall clock an hour after every test file's mtime: "written long ago"


def settler(settle: float = 0.5, grace: float = 2.0, wall: float | None = None) -> Settler:
    return Settler(settle, grace, wall=(lambda: wall) if wall is not None else time.time)


def test_a_file_renamed_into_place_is_ready_at_once(tmp_path: Path) -> None:
    path = tmp_path / "a.json"
    path.write_text("{}")
    s = settler(wall=0.0)  # mtime age cannot help: only the complete hint makes it ready
    s.hint(path, complete=True)
    s.update(now=100.0)
    assert s.take(10) == [path]


def test_a_changing_file_waits_until_it_settles(tmp_path: Path) -> None:
    path = tmp_path / "a.json"
    path.write_text("{")
    s = settler(settle=0.5, wall=0.0)
    s.hint(path)
    s.update(now=100.0)
    assert s.take(10) == [] and s.next_deadline() == pytest.approx(100.5)
    path.write_text("{}")  # changed before the deadline: the clock starts again
    s.update(now=100.5)
    assert s.take(10) == [] and s.next_deadline() == pytest.approx(101.0)
    s.update(now=101.0)
    assert s.take(10) == [path]


def test_an_old_file_found_by_a_scan_is_ready(tmp_path: Path) -> None:
    path = tmp_path / "a.json"
    path.write_text("{}")
    s = settler(wall=OLD)
    s.hint(path)
    s.update(now=5.0)
    assert s.take(10) == [path]


def test_an_unparseable_file_is_rejected_only_after_the_grace_period(tmp_path: Path) -> None:
    path = tmp_path / "a.json"
    path.write_text("{")
    s = settler(settle=0.1, grace=2.0, wall=0.0)
    s.hint(path, complete=True)
    s.update(now=10.0)
    assert s.take(1) == [path]
    assert s.failed(path, now=10.0) is False  # keep waiting: the producer may still be writing
    s.update(now=11.0)
    assert s.take(1) == []
    s.update(now=12.0)
    assert s.take(1) == [path]  # offered once more after the grace period
    assert s.failed(path, now=12.0) is True


def test_a_change_after_a_failed_parse_is_read_again(tmp_path: Path) -> None:
    path = tmp_path / "a.json"
    path.write_text("{")
    s = settler(settle=0.1, grace=5.0, wall=0.0)
    s.hint(path, complete=True)
    s.update(now=10.0)
    s.take(1)
    s.failed(path, now=10.0)
    path.write_text("{}  ")
    s.hint(path, complete=True)
    s.update(now=10.2)
    assert s.take(1) == [path]


def test_processed_content_is_not_offered_again(tmp_path: Path) -> None:
    path = tmp_path / "out.json"
    path.write_text("{}")
    s = settler(wall=OLD)
    s.hint(path)
    s.update(now=1.0)
    [taken] = s.take(1)
    s.done(taken)
    s.mark_processed(path, _sig(path))
    s.hint(path)
    s.update(now=2.0)
    assert s.take(1) == [] and len(s) == 0


def test_a_vanished_file_is_forgotten(tmp_path: Path) -> None:
    s = settler()
    s.hint(tmp_path / "gone.json")
    s.update(now=1.0)
    assert len(s) == 0


def test_directories_and_symlinks_are_ready_at_once_for_rejection(tmp_path: Path) -> None:
    (tmp_path / "d.json").mkdir()
    (tmp_path / "l.json").symlink_to("/etc/hostname")
    s = settler(wall=0.0)
    for name in ("d.json", "l.json"):
        s.hint(tmp_path / name)
    s.update(now=1.0)
    assert sorted(p.name for p in s.take(10)) == ["d.json", "l.json"]


def test_take_respects_the_limit_and_keeps_order(tmp_path: Path) -> None:
    s = settler(wall=0.0)
    paths = [tmp_path / f"{i}.json" for i in range(5)]
    for path in paths:
        path.write_text("{}")
        s.hint(path, complete=True)
    s.update(now=1.0)
    assert s.take(2) == paths[:2] and s.take(10) == paths[2:]


def _sig(path: Path) -> tuple[int, int, int]:
    info = os.lstat(path)
    return (info.st_size, info.st_mtime_ns, info.st_ino)


@pytest.mark.parametrize("polling", [False, True])
def test_events_become_hints_and_wake_the_loop(tmp_path: Path, polling: bool) -> None:
    waker = Waker()
    intake = FolderObserver(waker.set, polling=polling)
    intake.start([(tmp_path, False)])
    hints: list[tuple[Path, bool]] = []
    try:
        temp = tmp_path / ".r.json.tmp"
        temp.write_text("{}")
        os.rename(temp, tmp_path / "r.json")

        def got_it() -> bool:
            waker.wait(0.05)
            hints.extend(intake.drain())
            return (tmp_path / "r.json", True) in hints or (polling and (tmp_path / "r.json", False) in hints)

        assert wait_until(got_it, timeout=5)
    finally:
        intake.stop()
        waker.close()


def test_waker_wakes_a_waiting_thread() -> None:
    waker = Waker()
    woke = threading.Event()

    def wait() -> None:
        if waker.wait(10):
            woke.set()

    thread = threading.Thread(target=wait)
    thread.start()
    waker.set()
    thread.join(5)
    assert woke.is_set()
    assert waker.wait(0) is False  # consumed
    waker.close()


def test_waker_loses_no_wake_up_when_many_threads_set_it() -> None:
    """Each producer hands over one item at a time and waits until it is taken: every item needs its wake-up."""
    waker, pending, taken, stop = Waker(), [0], [0], threading.Event()
    condition = threading.Condition()
    per_thread, producers = 1000, 3

    def produce() -> None:
        for _ in range(per_thread):
            with condition:
                pending[0] += 1
                goal = taken[0] + pending[0]
            waker.set()
            with condition:
                condition.wait_for(lambda: taken[0] >= goal or stop.is_set(), timeout=10)
            if stop.is_set():
                return

    threads = [threading.Thread(target=produce, daemon=True) for _ in range(producers)]
    for thread in threads:
        thread.start()
    try:
        while taken[0] < per_thread * producers:
            assert waker.wait(2), f"lost wake-up: {pending[0]} item(s) waiting"
            with condition:
                taken[0] += pending[0]
                pending[0] = 0
                condition.notify_all()
    finally:
        stop.set()
        with condition:
            condition.notify_all()
        for thread in threads:
            thread.join(5)
        waker.close()


def test_a_file_moved_in_is_complete_and_one_moved_out_leaves_no_hint(tmp_path: Path) -> None:
    spool, outside = tmp_path / "spool", tmp_path / "outside"
    (spool / "processing").mkdir(parents=True)
    outside.mkdir()
    (spool / "claimed.json").write_text("{}")
    (outside / "r.json").write_text("{}")
    waker = Waker()
    intake = FolderObserver(waker.set)
    intake.start([(spool, False)])
    hints: list[tuple[Path, bool]] = []
    try:
        os.rename(spool / "claimed.json", spool / "processing" / "claimed.json")  # what a claim does
        os.rename(outside / "r.json", spool / "r.json")

        def got_it() -> bool:
            waker.wait(0.05)
            hints.extend(intake.drain())
            return (spool / "r.json", True) in hints

        assert wait_until(got_it, timeout=5)
        assert [path for path, _ in hints if path.name == "claimed.json"] == []
    finally:
        intake.stop()
        waker.close()


def test_held_move_events_let_others_pass_and_are_the_only_ones_searched() -> None:
    queue: PromptDelayedQueue[str] = PromptDelayedQueue(0.05)
    queue.put("moved-from-a", delay=True)
    queue.put("created-b")
    queue.put("moved-from-c", delay=True)
    assert queue.get() == "created-b"  # not held up by a
    assert queue.find(lambda e: e.startswith("created")) is None  # only held events are paired
    assert queue.remove(lambda e: e == "moved-from-c") == "moved-from-c"
    started = time.monotonic()
    assert queue.get() == "moved-from-a"  # handed out once due
    assert time.monotonic() - started <= 0.05 + 1.0
    queue.close()
    assert queue.get() is None


def test_direct_dispatch_hands_filtered_events_to_the_handler_without_the_observer_thread(tmp_path: Path) -> None:
    from watchdog.events import FileCreatedEvent, FileSystemEvent, FileSystemEventHandler

    from watcher.intake.inotify import arrivals_observer, dispatch_directly

    seen: list[tuple[str, str, str]] = []

    def handler(event: FileSystemEvent) -> None:
        seen.append(
            (type(event).__name__, os.path.basename(os.fsdecode(event.src_path)), threading.current_thread().name)
        )

    observer = arrivals_observer()
    unused = FileSystemEventHandler()  # what the observer's own thread would call; it records nothing
    observer.schedule(unused, str(tmp_path), recursive=False, event_filter=[FileCreatedEvent])
    dispatch_directly(observer, handler)
    observer.daemon = True
    observer.start()
    emitters = {emitter.name for emitter in observer.emitters}
    try:
        (tmp_path / "a.json").write_text("{}")
        (tmp_path / "a.json").unlink()  # deleted and modified events are filtered out
        (tmp_path / "b.json").write_text("{}")
        assert wait_until(lambda: any(name == "b.json" for _, name, _ in seen), timeout=10)
    finally:
        observer.stop()
        observer.join(5)
    assert [(kind, name) for kind, name, _ in seen] == [("FileCreatedEvent", "a.json"), ("FileCreatedEvent", "b.json")]
    assert all(thread != observer.name for _, _, thread in seen)  # not through the observer's queue and thread
    assert emitters and all(thread not in emitters for _, _, thread in seen)  # nor the emitter's: no move to pair


def test_a_watched_folder_removed_leaves_the_other_watches_working_and_the_observer_stoppable(tmp_path: Path) -> None:
    gone, kept = tmp_path / "gone", tmp_path / "kept"
    hints: list[Path] = []
    waker = Waker()
    intake = FolderObserver(waker.set)
    intake.start([(gone, False), (kept, False)])
    try:
        gone.rmdir()
        (kept / "a.json").write_text("{}")

        def arrived() -> bool:
            hints.extend(path for path, _ in intake.drain())
            return kept / "a.json" in hints

        assert wait_until(arrived, timeout=5)
    finally:
        stopped = threading.Thread(target=intake.stop, daemon=True)
        stopped.start()
        stopped.join(10)
        waker.close()
    assert not stopped.is_alive()

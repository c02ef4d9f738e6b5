"""The daemon's threads share one CPU; what it starts (the LLM server, jobs) gets every CPU it was given."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.daemon_fakes import FakeJudge, write_config
from watcher.config import load_settings
from watcher.core import affinity
from watcher.daemon.loop import Daemon
from watcher.daemon.server import NullLifecycle
from watcher.llm.process import SpawnSpec, spawn

pytestmark = pytest.mark.timeout(60)

GIVEN = frozenset(os.sched_getaffinity(0)) if affinity.supported() else frozenset()
needs_two_cpus = pytest.mark.skipif(len(GIVEN) < 2, reason="needs a process allowed on two CPUs or more")
PRINT_CPUS = "import os; print(sorted(os.sched_getaffinity(0)))"


def test_auto_takes_the_last_allowed_cpu_and_any_or_a_single_cpu_pins_nothing() -> None:
    assert affinity.choose("auto", frozenset({0, 2, 5})) == 5
    assert affinity.choose("any", frozenset({0, 1})) is None
    assert affinity.choose("auto", frozenset({3})) is None
    assert affinity.choose(2, frozenset({0, 2})) == 2
    assert affinity.choose(7, frozenset({0, 1})) is None  # not allowed here: a warning, and no pin


def on_a_thread(work: Callable[[], object]) -> object:
    result: list[object] = []
    thread = threading.Thread(target=lambda: result.append(work()))
    thread.start()
    thread.join(30)
    return result[0]


@needs_two_cpus
def test_a_pinned_thread_starts_children_on_every_cpu_only_when_unpinned() -> None:
    def pinned_then_spawn() -> tuple[str, str]:
        undo = affinity.pin_this_thread("auto")
        try:
            command = [sys.executable, "-c", PRINT_CPUS]
            inherited = subprocess.run(command, capture_output=True, text=True, check=True, timeout=20).stdout
            with affinity.unpinned():
                widened = subprocess.run(command, capture_output=True, text=True, check=True, timeout=20).stdout
            return inherited.strip(), widened.strip()
        finally:
            undo()

    inherited, widened = on_a_thread(pinned_then_spawn)  # type: ignore[misc]
    assert inherited == str([max(GIVEN)]) and widened == str(sorted(GIVEN))


@needs_two_cpus
def test_the_llm_spawner_gives_the_server_every_cpu(tmp_path: Path) -> None:
    log = tmp_path / "server.log"

    def pinned_then_spawn() -> int:
        undo = affinity.pin_this_thread("auto")
        try:
            return spawn(SpawnSpec((sys.executable, "-c", PRINT_CPUS), dict(os.environ), log)).wait(20)
        finally:
            undo()

    assert on_a_thread(pinned_then_spawn) == 0
    assert log.read_text().strip() == str(sorted(GIVEN))


def masks_seen_while_running(root: Path, cpu: str) -> tuple[list[set[int]], set[int]]:
    """Run a daemon on a thread; the masks of its worker threads while it runs, and its own mask afterwards."""
    (root / "data").mkdir()
    daemon = Daemon(load_settings(write_config(root, cpu=cpu), root), FakeJudge(), NullLifecycle())
    recover = daemon.scheduler.recover
    workers: list[set[int]] = []

    def look_then_stop() -> int:
        assert daemon.pool is not None
        workers.extend(os.sched_getaffinity(thread.native_id or 0) for thread in daemon.pool._threads)
        daemon.request_stop()
        return recover()

    daemon.scheduler.recover = look_then_stop  # type: ignore[method-assign]

    def run() -> set[int]:
        assert daemon.run(install_signals=False) == 0
        return os.sched_getaffinity(0)

    after = on_a_thread(run)
    return workers, after  # type: ignore[return-value]


@needs_two_cpus
def test_daemon_threads_share_one_cpu_and_the_mask_is_handed_back_at_shutdown(tmp_path: Path) -> None:
    workers, after = masks_seen_while_running(tmp_path, "auto")
    assert workers and all(mask == {max(GIVEN)} for mask in workers)
    assert after == GIVEN


@needs_two_cpus
def test_any_leaves_the_threads_where_the_kernel_puts_them(tmp_path: Path) -> None:
    workers, after = masks_seen_while_running(tmp_path, "any")
    assert workers and all(mask == GIVEN for mask in workers)
    assert after == GIVEN


@needs_two_cpus
def test_a_job_started_by_a_pinned_daemon_thread_gets_every_cpu(tmp_path: Path) -> None:
    from tests.support.jobs.harness import make_settings
    from watcher.autonomy.jobs import JobRunner
    from watcher.config.jobs import JobConfig

    settings = make_settings(tmp_path)
    job = JobConfig.model_validate(
        {"argv": [sys.executable, "-c", PRINT_CPUS], "output": "out.json", "judge_step": "1", "log_file": "j.log"}
    )

    def pinned_then_run() -> str:
        undo = affinity.pin_this_thread("auto")
        try:
            return JobRunner(settings, settings.watcher.jobs).run("r1.1.cpus", "cpus", job, list(job.argv)).status
        finally:
            undo()

    assert on_a_thread(pinned_then_run) == "exited"
    assert (tmp_path / "j.log").read_text().strip().splitlines()[-1] == str(sorted(GIVEN))

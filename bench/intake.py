"""Intake figures: what the daemon adds to a request, how fast it drains a burst, what it costs when idle.

    .venv/bin/python bench/intake.py [--requests 500] [--burst 10000] [--idle 60] [--workers N]

  bare       the same file system operations alone, per request: claim rename + atomic decision write
             (temp file, fsync, rename, fsync of the folder) + archive rename
  overhead   file renamed into the spool -> decision written, one request at a time, zero-latency judge
             (goal: p50 <= 2x bare); and the part of it before the decision write starts
  burst      files renamed into the spool at once -> last decision written (goal: >= 1,000 requests/s)
  idle       `watcher run` (the real evaluator, no server running) left alone: RSS and CPU
             (goals: <= 60 MB, <= 0.2 %)

Runs in a temp folder on the same file system as the system temp dir (set TMPDIR to measure elsewhere).

The file system's recent past shows in the figures: ext4 without a journal skips, when it allocates an inode, the
inodes freed in the last minutes, at a cost that grows with their number, and every decision is a new inode. On a
2-core VM a burst ran 13 % slower right after a run that removed its 30,000 files than after five quiet minutes.
Compare variants with ``--keep`` (each run leaves its folders; remove them after the last run), or with a few
minutes between runs. ``--cpu any`` measures the daemon with its threads spread over CPUs (see limits.cpu).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psutil

from watcher.config import Settings, load_settings
from watcher.core.atomic import atomic_write_json
from watcher.core.logs import configure_logging
from watcher.daemon.loop import Daemon
from watcher.daemon.server import NullLifecycle

REPO = Path(__file__).resolve().parents[1]
REQUEST = {"type": "evaluate_step", "step": "1", "file": "data/step1.json"}
# A checks-only evaluation, as the evaluator writes it for an output that cleared its checks.
DECISION: dict[str, Any] = {
    "kind": "evaluation", "decided_at": "2026-01-01T00:00:00.000+00:00", "decision": "proceed", "step": "1",
    "step_name": "bench", "source_file": "data/step1.json", "source_sha256": "0" * 64, "confidence": None,
    "parse_method": "checks_only", "fallback_reason": None, "payload": None, "checks": {"results": []},
    "verdict": {"decision": "proceed", "decided_by": "checks", "rule": "all_checks_clear", "overridden_by": None,
                "model_decision": None, "model_confidence": None},
    "grammar": None, "server": None, "model": None, "server_build": None, "timings": {}, "attempts": [],
}  # fmt: skip
BLOCK = 25
WARM_UP = 20


class InstantJudge:
    """A record as the evaluator makes one without the model (the daemon validates every record it writes)."""

    def __init__(self) -> None:
        sys.path.insert(0, str(REPO))
        from tests.support.records import evaluation_body

        self._body = evaluation_body

    def judge(self, file: Path, step: str | None = None, *, request_id: str | None = None) -> dict[str, Any]:
        return self._body(file, step)


def bench_root(workers: int | None, cpu: str | int = "auto") -> tuple[Path, Settings]:
    root = Path(tempfile.mkdtemp(prefix="watcher-bench-"))
    shutil.copytree(REPO / "config", root / "config")
    file = root / "config" / "watcher.json"
    data = json.loads(file.read_text())
    data["limits"]["concurrency"] = workers
    data["limits"]["cpu"] = cpu
    file.write_text(json.dumps(data))
    (root / "data").mkdir()
    (root / "data" / "step1.json").write_text('{"window": 12}')
    return root, load_settings(root / "config", root=root)


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


class BareOps:
    """The daemon's file system operations for one request, without the daemon."""

    def __init__(self, root: Path) -> None:
        self.folders = [root / "bare" / name for name in ("in", "processing", "done", "dec")]
        for folder in self.folders:
            folder.mkdir(parents=True)
        self.body = json.dumps({**REQUEST, "id": "x"}).encode()

    def once(self, i: int) -> float:
        spool, processing, done, decisions = self.folders
        source = spool / f"r{i}.json"
        source.write_bytes(self.body)
        start = time.perf_counter()
        os.rename(source, processing / source.name)
        atomic_write_json(decisions / source.name, {"request_id": f"r{i}", **DECISION})
        os.rename(processing / source.name, done / source.name)
        return time.perf_counter() - start


@contextmanager
def daemon_running(settings: Settings, on_decision: Callable[[float], None]) -> Iterator[Daemon]:
    """The daemon on a thread; ``on_decision(write_started)`` runs once each decision file is written."""
    daemon = Daemon(settings, InstantJudge(), NullLifecycle())
    write_decision = daemon.spool.write_decision

    def timed_write(request_id: str, record: dict[str, Any]) -> Path:
        started = time.perf_counter()
        path = write_decision(request_id, record)
        on_decision(started)
        return path

    daemon.spool.write_decision = timed_write  # type: ignore[method-assign]
    thread = threading.Thread(target=daemon.run, kwargs={"install_signals": False}, daemon=True)
    thread.start()
    if not daemon.ready.wait(30):
        raise SystemExit("daemon did not start")
    try:
        yield daemon
    finally:
        daemon.request_stop()
        thread.join(60)


def bench_overhead(settings: Settings, n: int) -> tuple[list[float], list[float], list[float]]:
    """Per request: the daemon's latency and the bare operations, in alternating blocks so both see the same
    load (alternating single operations would make each one wait for the other's journal commit)."""
    spool = settings.path(settings.watcher.folders.requests)
    bare = BareOps(settings.root)
    written = threading.Event()
    stamp: list[tuple[float, float]] = []

    def on_decision(write_started: float) -> None:
        stamp.append((write_started, time.perf_counter()))
        written.set()

    bare_samples, samples, before_write = [], [], []
    with daemon_running(settings, on_decision):
        for i in range(-WARM_UP, n):
            if i >= 0 and i % (2 * BLOCK) < BLOCK:
                bare_samples.append(bare.once(i))
                continue
            temp = spool / f".o{i}.tmp"
            temp.write_text(json.dumps({**REQUEST, "id": f"o{i}"}))
            written.clear()
            start = time.perf_counter()
            os.rename(temp, spool / f"o{i}.json")
            if not written.wait(10):
                raise SystemExit(f"no decision for o{i}")
            if i >= 0:  # the first requests pay for imports and caches
                samples.append(stamp[-1][1] - start)
                before_write.append(stamp[-1][0] - start)
    return bare_samples, samples, before_write


def bench_burst(settings: Settings, n: int) -> tuple[float, float, float]:
    """Seconds from the first rename to the last decision, the seconds the renames took, and the CPU seconds
    (user + system, all threads) the process spent meanwhile."""
    spool = settings.path(settings.watcher.folders.requests)
    staging = settings.root / "staging"
    staging.mkdir()
    for i in range(n):
        (staging / f"b{i:05}.json").write_text(json.dumps({**REQUEST, "id": f"b{i:05}"}))
    count = [0]
    finished = threading.Event()
    lock = threading.Lock()

    def on_decision(_: float) -> None:
        with lock:
            count[0] += 1
            if count[0] == n:
                finished.set()

    with daemon_running(settings, on_decision):
        start, cpu = time.perf_counter(), cpu_seconds()
        for i in range(n):
            os.rename(staging / f"b{i:05}.json", spool / f"b{i:05}.json")
        dropped = time.perf_counter() - start
        if not finished.wait(600):
            raise SystemExit(f"burst: only {count[0]} of {n} decisions")
        return time.perf_counter() - start, dropped, cpu_seconds() - cpu


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def bench_idle(root: Path, seconds: float) -> tuple[float, float]:
    """RSS (MB) at the end and CPU (% of one core) of an idle `watcher run` over ``seconds``."""
    env = {**os.environ, "WATCHER_CONFIG_DIR": str(root / "config"), "WATCHER_ROOT": str(root)}
    env.pop("WATCHER_TEST_JUDGE", None)
    process = subprocess.Popen([sys.executable, "-m", "watcher", "run"], cwd=root, env=env, stderr=subprocess.DEVNULL)
    try:
        watched = psutil.Process(process.pid)
        status = root / ".watcher" / "status.json"
        deadline = time.monotonic() + 30
        while not status.exists() and time.monotonic() < deadline:
            threading.Event().wait(0.1)
        threading.Event().wait(2)  # past start-up work
        before = watched.cpu_times()
        threading.Event().wait(seconds)
        after = watched.cpu_times()
        rss = watched.memory_info().rss / 2**20
    finally:
        process.terminate()
        process.wait(30)
    used = (after.user - before.user) + (after.system - before.system)
    return rss, 100 * used / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=1000, help="sequential requests (half bare, half daemon)")
    parser.add_argument("--burst", type=int, default=10_000, help="files in the burst")
    parser.add_argument("--idle", type=float, default=60.0, help="seconds of idle measurement")
    parser.add_argument("--workers", type=int, default=None, help="limits.concurrency (default: the config's)")
    parser.add_argument("--keep", action="store_true", help="leave the temp folders (see above), print where")
    parser.add_argument("--cpu", default="auto", help="limits.cpu: auto, any or a CPU number (default: auto)")
    args = parser.parse_args()
    cpu_setting = int(args.cpu) if args.cpu.isdigit() else args.cpu
    configure_logging("WARNING")

    root, settings = bench_root(args.workers, cpu_setting)
    _, burst_settings = bench_root(args.workers, cpu_setting)
    try:
        bare_samples, samples, before_write = bench_overhead(settings, args.requests)
        bare, overhead, own = percentiles(bare_samples), percentiles(samples), percentiles(before_write)
        took, dropped, cpu_used = bench_burst(burst_settings, args.burst)
        rss, cpu = bench_idle(root, args.idle)
    finally:
        for folder in (root, burst_settings.root):
            if args.keep:
                print(f"kept {folder}")
            else:
                shutil.rmtree(folder, ignore_errors=True)

    workers = settings.watcher.limits.concurrency or settings.server(settings.watcher.evaluation.server).parallel_slots
    print(
        f"file system: {tempfile.gettempdir()}; evaluation slots: {workers}; limits.cpu {cpu_setting!r};"
        f" load average {os.getloadavg()}"
    )
    print(f"bare      p50 {bare[0] * 1e3:7.3f} ms   p99 {bare[1] * 1e3:7.3f} ms")
    print(
        f"overhead  p50 {overhead[0] * 1e3:7.3f} ms   p99 {overhead[1] * 1e3:7.3f} ms"
        f"   ratio p50 {overhead[0] / bare[0]:.2f}x  p99 {overhead[1] / bare[1]:.2f}x  (goal p50 <= 2x)"
    )
    print(
        "  of which before the decision write starts (event, checks, claim, hand-off):"
        f" p50 {own[0] * 1e3:.3f} ms   p99 {own[1] * 1e3:.3f} ms"
    )
    print(
        f"burst     {args.burst} files in {took:.2f} s = {args.burst / took:,.0f} requests/s"
        f"  (renames took {dropped:.2f} s; goal >= 1,000/s)"
    )
    print(f"  CPU {cpu_used / args.burst * 1e3:.2f} ms per request (user + system, all threads)")
    print(f"idle      RSS {rss:.1f} MB (goal <= 60)   CPU {cpu:.3f} % over {args.idle:g} s (goal <= 0.2)")


if __name__ == "__main__":
    main()

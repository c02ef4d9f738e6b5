"""Lifecycle figures with the real llama-server: readiness latency, stop time, idle-stop lateness.

    .venv/bin/python bench/lifecycle.py [--rounds 5] [--ctx 32768] [--idle 2]

Per round:
  ready     spawn -> first /health 200 seen by an independent 5 ms poller (the server's own readiness)
  ensure    spawn -> ensure_running() returns;  gap = ensure - ready  (goal: <= 50 ms)
  stop      stop() called -> process group gone and port free          (goal: <= 1 s)
  idle      idle deadline -> stopped, with the daemon's wait-until-due loop (goal: lateness <= 0.5 s)
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import threading
import time
from pathlib import Path

import httpx

from watcher.config import Settings, load_settings
from watcher.core.logs import configure_logging
from watcher.llm.lifecycle import LLMLifecycleManager

REPO = Path(__file__).resolve().parents[1]
POLL_SEC = 0.005
DAEMON_TICK_SEC = 1.0  # the daemon loop's longest wait; it wakes earlier when the idle stop is due


def bench_settings(root: Path, ctx: int, idle: float, port: int) -> Settings:
    shutil.copytree(REPO / "config", root / "config")
    file = root / "config" / "llm_server_config.json"
    data = json.loads(file.read_text())
    data["servers"]["primary"].update(port=port, context_length=ctx, idle_timeout_sec=idle, threads=2)
    file.write_text(json.dumps(data))
    return load_settings(root / "config", root=root)


def first_health_200(url: str, stop: threading.Event, seen: list[float]) -> None:
    """Runs until it has seen a 200 itself (``stop`` only bounds it), so a slow round is not lost."""
    with httpx.Client(timeout=httpx.Timeout(1.0, connect=0.2), trust_env=False) as client:
        while not stop.is_set():
            try:
                if client.get(f"{url}/health").status_code == 200:
                    seen.append(time.monotonic())
                    return
            except httpx.HTTPError:
                pass
            stop.wait(POLL_SEC)


def start_round(mgr: LLMLifecycleManager) -> tuple[float, float]:
    """(spawn -> first 200 by the poller, spawn -> ensure_running returns), in seconds."""
    seen: list[float] = []
    halt = threading.Event()
    poller = threading.Thread(target=first_health_200, args=(mgr.base_url, halt, seen))
    poller.start()
    called = time.monotonic()
    mgr.ensure_running()
    returned = time.monotonic()
    poller.join(timeout=10)
    halt.set()
    poller.join()
    spawned = called + _spawn_offset(mgr, called)
    return (seen[0] if seen else float("nan")) - spawned, returned - spawned


def _spawn_offset(mgr: LLMLifecycleManager, called: float) -> float:
    # The manager records the spawn moment (monotonic) when it tracks the process.
    server = mgr._server
    return server.started - called if server is not None else 0.0


def idle_round(mgr: LLMLifecycleManager, idle: float) -> tuple[float, float]:
    """(deadline -> idle stop begins, deadline -> group gone and port free), in seconds."""
    mgr.ensure_running()
    with mgr.in_use():
        pass
    deadline = time.monotonic() + idle  # idle time counts from the end of the last use
    wake = threading.Event()
    while True:
        left = mgr.idle_seconds_left()
        wake.wait(min(DAEMON_TICK_SEC, left) if left else 0)
        began = time.monotonic()
        report = mgr.idle_check_and_stop()
        if report is not None:
            return began - deadline, time.monotonic() - deadline


def summary(name: str, values: list[float], unit: float = 1000.0, suffix: str = "ms") -> str:
    scaled = [v * unit for v in values]
    return (
        f"{name:<34} median {statistics.median(scaled):8.1f} {suffix}   max {max(scaled):8.1f} {suffix}   "
        f"({', '.join(f'{v:.1f}' for v in scaled)})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--ctx", type=int, default=32768)
    parser.add_argument("--idle", type=float, default=2.0, help="idle_timeout_sec for the idle rounds")
    parser.add_argument("--port", type=int, default=18181)
    args = parser.parse_args()
    configure_logging("WARNING")
    with tempfile.TemporaryDirectory() as tmp:
        mgr = LLMLifecycleManager(bench_settings(Path(tmp), args.ctx, args.idle, args.port))
        ready, ensure, stops, idle_begin, idle_done = [], [], [], [], []
        try:
            for _ in range(args.rounds):
                r, e = start_round(mgr)
                ready.append(r)
                ensure.append(e)
                called = time.monotonic()
                report = mgr.stop()
                stops.append(time.monotonic() - called)
                assert report.stopped and report.port_free
            for _ in range(args.rounds):
                began, done = idle_round(mgr, args.idle)
                idle_begin.append(began)
                idle_done.append(done)
        finally:
            mgr.stop()
    print(f"llama-server lifecycle, ctx {args.ctx}, {args.rounds} rounds")
    print(summary("spawn -> first /health 200 (5 ms)", ready))
    print(summary("spawn -> ensure_running() returns", ensure))
    print(summary("gap (ensure - ready)", [e - r for e, r in zip(ensure, ready, strict=True)]))
    print(summary("stop() -> group gone, port free", stops))
    print(summary("idle deadline -> stop begins", idle_begin))
    print(summary("idle deadline -> stopped", idle_done))


if __name__ == "__main__":
    main()

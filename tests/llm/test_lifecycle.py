"""The lifecycle manager against the real llama-server: start, use, stop, find, idle, threads, orphans."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest
from loguru import logger

from tests.support.helpers import wait_until
from tests.support.lifecycle_fixtures import make_settings
from watcher.config import Settings
from watcher.errors import BinaryNotFound, PortInUse, ServerStartError
from watcher.llm.command import build_command
from watcher.llm.lifecycle import LLMLifecycleManager, get_lifecycle_manager
from watcher.llm.process import find_servers, port_listening

pytestmark = pytest.mark.real_server


@pytest.fixture
def settings(tmp_path: Path, llama_binary: Path, model_path: Path) -> Settings:
    return make_settings(tmp_path, binary=llama_binary, model_path=model_path)


@pytest.fixture
def manager(settings: Settings) -> Iterator[LLMLifecycleManager]:
    mgr = LLMLifecycleManager(settings)
    yield mgr
    mgr.stop()


@pytest.fixture
def messages() -> Iterator[list[str]]:
    lines: list[str] = []
    sink = logger.add(lambda m: lines.append(m.record["message"]), level="DEBUG", format="{message}")
    yield lines
    logger.remove(sink)


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.mark.timeout(120)
def test_start_answer_stop_at_full_context(
    tmp_path: Path, llama_binary: Path, model_path: Path, messages: list[str]
) -> None:
    settings = make_settings(tmp_path, binary=llama_binary, model_path=model_path, context_length=32768)
    mgr = LLMLifecycleManager(settings)
    try:
        mgr.ensure_running()
        assert mgr.is_healthy()
        status = mgr.status()
        assert (status.state, status.owner, status.ctx_size) == ("running", "this process", 32768)
        assert status.pid is not None and status.rss_bytes and mgr.record_file.is_file()
        reply = httpx.post(f"{mgr.base_url}/completion", json={"prompt": "Hello", "n_predict": 4}, timeout=60)
        assert reply.status_code == 200 and "content" in reply.json()
    finally:
        report = mgr.stop()
    assert report.stopped and report.pids == (status.pid,) and not report.forced
    assert report.rss_freed_bytes > 50_000_000 and report.port_free
    assert gone(status.pid) and not port_listening("127.0.0.1", settings.server().port)
    assert not mgr.record_file.exists()
    healthy = [m for m in messages if m.startswith("LLM server healthy")]
    assert len(healthy) == 1
    # 111 MiB: 3 full layers x 32768 cells + 15 sliding-window layers x 1024 cells, K and V, f16.
    assert re.fullmatch(r"LLM server healthy after \d+\.\ds \(startup #1\)\. ctx_size=32768, kv_cache_est≈0\.12GB/GPU",
                        healthy[0]), healthy[0]  # fmt: skip


@pytest.mark.timeout(60)
def test_stop_twice_is_a_quiet_no_op(manager: LLMLifecycleManager, messages: list[str]) -> None:
    manager.ensure_running()
    assert manager.stop().stopped
    second = manager.stop()
    assert not second.stopped
    assert messages[-1] == "llm server 'primary': stop requested, nothing runs"


@pytest.mark.timeout(60)
def test_stop_finds_a_server_started_outside_the_manager(
    settings: Settings, llama_binary: Path, model_path: Path
) -> None:
    command = build_command(settings.server(), llama_binary, model_path)
    outside = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        assert wait_until(lambda: port_listening("127.0.0.1", settings.server().port), 30)
        report = LLMLifecycleManager(settings).stop()
        assert report.stopped and report.found_by == "process scan" and report.pids == (outside.pid,)
        assert outside.wait(timeout=1) is not None  # already exited: the wait only reaps it
    finally:
        if outside.poll() is None:
            outside.kill()
            outside.wait()


@pytest.mark.timeout(60)
def test_a_later_manager_adopts_then_stops_by_pid_record(settings: Settings) -> None:
    first = LLMLifecycleManager(settings)
    first.ensure_running()
    pid = first.status().pid
    try:
        later = LLMLifecycleManager(settings)  # as in the next daemon: nothing in memory, only the record
        later.ensure_running()
        assert later.status().pid == pid and later.status().owner == "pid record"
        report = later.stop()
        assert report.stopped and report.found_by == "pid record" and report.pids == (pid,)
        assert pid is not None and gone(pid)
    finally:
        first.stop()


@pytest.mark.timeout(60)
def test_idle_timeout_stops_it_but_never_while_in_use(tmp_path: Path, llama_binary: Path, model_path: Path) -> None:
    settings = make_settings(tmp_path, binary=llama_binary, model_path=model_path, idle_timeout_sec=30)
    mgr = LLMLifecycleManager(settings)
    try:
        with mgr.in_use():
            mgr.ensure_running()
            assert mgr.idle_check_and_stop(now=time.monotonic() + 3600) is None
            assert mgr.idle_seconds_left() is None
        ended = time.monotonic()
        assert mgr.idle_check_and_stop(now=ended + 29) is None
        assert mgr.is_healthy()
        report = mgr.idle_check_and_stop(now=ended + 30.5)
        assert report is not None and report.stopped
        assert not mgr.is_healthy()
    finally:
        mgr.stop()


@pytest.mark.timeout(60)
def test_idle_timeout_zero_means_never(tmp_path: Path, llama_binary: Path, model_path: Path) -> None:
    mgr = LLMLifecycleManager(make_settings(tmp_path, binary=llama_binary, model_path=model_path, idle_timeout_sec=0))
    try:
        mgr.ensure_running()
        assert mgr.idle_check_and_stop(now=time.monotonic() + 10**6) is None
        assert mgr.is_healthy()
    finally:
        mgr.stop()


@pytest.mark.timeout(90)
def test_eight_threads_share_one_start(settings: Settings, llama_binary: Path) -> None:
    mgr = get_lifecycle_manager(settings)
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []

    def call() -> None:
        try:
            barrier.wait()
            get_lifecycle_manager(settings).ensure_running()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=call) for _ in range(8)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert not errors
        assert len(find_servers(llama_binary, settings.server().port)) == 1
        assert mgr.status().startups == 1
    finally:
        mgr.stop()


CHILD = """
import sys, threading
from pathlib import Path
from watcher.config import load_settings
from watcher.llm.lifecycle import get_lifecycle_manager
manager = get_lifecycle_manager(load_settings(Path(sys.argv[1]), root=Path(sys.argv[2])))
# Started from a thread that ends at once: the server must outlive the thread, only not the process.
starter = threading.Thread(target=manager.ensure_running)
starter.start()
starter.join()
print(manager.status().pid, flush=True)
threading.Event().wait()
"""


@pytest.mark.timeout(90)
def test_server_dies_with_a_killed_parent(settings: Settings) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(settings.config_dir), str(settings.root)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None
        pid = int(child.stdout.readline())
        assert not gone(pid) and LLMLifecycleManager(settings).is_healthy()
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=5)
        assert wait_until(lambda: gone(pid), timeout=3, interval=0.01)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


@pytest.mark.timeout(30)
def test_foreign_listener_is_a_clear_error_and_left_alone(manager: LLMLifecycleManager) -> None:
    with socket.create_server(("127.0.0.1", manager.config.port)) as listener:
        with pytest.raises(PortInUse, match=rf"held by pid {os.getpid()} .*left alone"):
            manager.ensure_running()
        with pytest.raises(PortInUse):
            manager.stop()
        with socket.create_connection(("127.0.0.1", manager.config.port), timeout=2):
            pass  # still listening, nobody signalled us
        assert listener.fileno() >= 0


@pytest.mark.timeout(30)
def test_missing_binary_is_a_clear_error(tmp_path: Path, model_path: Path) -> None:
    missing = tmp_path / "bin" / "llama-server"
    mgr = LLMLifecycleManager(make_settings(tmp_path, binary=missing, model_path=model_path))
    with pytest.raises(BinaryNotFound, match=re.escape(str(missing))):
        mgr.ensure_running()
    assert mgr.status().state == "stopped"


@pytest.mark.timeout(30)
def test_a_model_that_is_not_gguf_fails_fast_with_the_log_tail(tmp_path: Path, llama_binary: Path) -> None:
    bogus = tmp_path / "model.gguf"
    bogus.write_bytes(b"this is not a model\n" * 1000)
    mgr = LLMLifecycleManager(make_settings(tmp_path, binary=llama_binary, model_path=bogus))
    started = time.monotonic()
    with pytest.raises(ServerStartError) as caught:
        mgr.ensure_running()
    assert time.monotonic() - started < 10
    text = str(caught.value)
    assert "exited with code" in text and "not a GGUF file" in text and "last lines of" in text
    assert "llama_model_load" in text or "gguf" in text.lower().split("last lines of", 1)[1]
    assert not mgr.record_file.exists()

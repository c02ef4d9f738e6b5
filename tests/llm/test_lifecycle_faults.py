"""Faults the real llama-server will not produce on demand, played by a fake that speaks its HTTP API."""

from __future__ import annotations

import dataclasses
import os
import re
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from tests.support.fake_llama_server import make_fake_binary
from tests.support.helpers import wait_until
from tests.support.lifecycle_fixtures import make_settings
from watcher.errors import ServerStartError, ServerStartTimeout
from watcher.llm.lifecycle import LLMLifecycleManager
from watcher.llm.pidrecord import read_record
from watcher.llm.process import port_listening


def fake_manager(tmp_path: Path, mode: str, **overrides: object) -> LLMLifecycleManager:
    model = tmp_path / "fake.gguf"
    model.write_bytes(b"GGUF" + b"\0" * 64)  # the fake never reads it; the KV estimate is then unknown
    binary = make_fake_binary(tmp_path / "bin", mode)
    return LLMLifecycleManager(make_settings(tmp_path, binary=binary, model_path=model, **overrides))


@pytest.fixture
def stops() -> Iterator[list[LLMLifecycleManager]]:
    managers: list[LLMLifecycleManager] = []
    yield managers
    for manager in managers:
        manager.stop(timeout_sec=0.5)


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.mark.timeout(30)
def test_health_503_forever_hits_the_deadline_and_kills_the_group(
    tmp_path: Path, stops: list[LLMLifecycleManager]
) -> None:
    mgr = fake_manager(tmp_path, "loading", health_check_deadline_sec=1.0)
    stops.append(mgr)
    started = time.monotonic()
    with pytest.raises(ServerStartTimeout, match=r"not healthy within 1s \(last: /health 503\)") as caught:
        mgr.ensure_running()
    assert 1.0 <= time.monotonic() - started < 3.0
    assert "fake llama-server listening" in str(caught.value)  # the log tail
    assert not port_listening("127.0.0.1", mgr.config.port)
    assert not mgr.record_file.exists()


@pytest.mark.timeout(30)
def test_a_server_ignoring_sigterm_is_killed_after_the_timeout(
    tmp_path: Path, stops: list[LLMLifecycleManager]
) -> None:
    mgr = fake_manager(tmp_path, "ignore-sigterm")
    stops.append(mgr)
    mgr.ensure_running()
    pid = mgr.status().pid
    assert pid is not None
    started = time.monotonic()
    report = mgr.stop(timeout_sec=0.5)
    assert report.forced and report.stopped and 0.5 <= time.monotonic() - started < 3.0
    assert gone(pid) and report.port_free


@pytest.mark.timeout(30)
def test_a_server_dying_mid_request_is_noticed_and_restarted(tmp_path: Path, stops: list[LLMLifecycleManager]) -> None:
    mgr = fake_manager(tmp_path, "die-mid-request")
    stops.append(mgr)
    mgr.ensure_running()
    first = mgr.status().pid
    with pytest.raises(httpx.HTTPError):
        httpx.post(f"{mgr.base_url}/completion", json={"prompt": "x"}, timeout=5)
    assert wait_until(lambda: mgr.status().state == "stopped", timeout=5)
    assert not mgr.is_healthy()
    mgr.ensure_running()
    status = mgr.status()
    assert status.pid != first and status.startups == 2 and mgr.is_healthy()
    record = read_record(mgr.record_file)
    assert record is not None and record.pid == status.pid and record.startup == 2


@pytest.mark.timeout(30)
def test_a_server_exiting_at_once_fails_the_start_at_once(tmp_path: Path, stops: list[LLMLifecycleManager]) -> None:
    mgr = fake_manager(tmp_path, "exit")
    stops.append(mgr)
    started = time.monotonic()
    with pytest.raises(ServerStartError, match=r"(?s)exited with code 3 .*failed to load model"):
        mgr.ensure_running()
    assert time.monotonic() - started < 5


@pytest.mark.timeout(30)
def test_stop_abandons_a_start_under_way(tmp_path: Path, stops: list[LLMLifecycleManager]) -> None:
    mgr = fake_manager(tmp_path, "loading", health_check_deadline_sec=60)
    stops.append(mgr)
    errors: list[BaseException] = []

    def start() -> None:
        try:
            mgr.ensure_running()
        except BaseException as exc:
            errors.append(exc)

    starter = threading.Thread(target=start)
    starter.start()
    assert wait_until(lambda: mgr.status().state == "starting" and port_listening("127.0.0.1", mgr.config.port), 10)
    started = time.monotonic()
    mgr.stop()
    starter.join(timeout=5)
    assert time.monotonic() - started < 2
    assert len(errors) == 1 and "start abandoned" in str(errors[0])
    assert not port_listening("127.0.0.1", mgr.config.port)


@pytest.mark.timeout(30)
def test_a_record_whose_pid_was_reused_is_not_acted_on(tmp_path: Path, stops: list[LLMLifecycleManager]) -> None:
    mgr = fake_manager(tmp_path, "normal")
    stops.append(mgr)
    mgr.ensure_running()
    record = read_record(mgr.record_file)
    assert record is not None
    mgr.stop()
    # Same pid field, but the process that now has it (us) started at another time: not that server.
    reused = dataclasses.replace(record, pid=os.getpid(), pgid=os.getpgrp())
    reused.write(mgr.record_file)
    assert reused.process() is None
    report = LLMLifecycleManager(mgr.settings).stop()
    assert not report.stopped


@pytest.mark.timeout(30)
def test_stop_waits_for_every_process_of_the_group(tmp_path: Path, stops: list[LLMLifecycleManager]) -> None:
    mgr = fake_manager(tmp_path, "with-child")
    stops.append(mgr)
    mgr.ensure_running()
    found = re.search(r"fake child pid (\d+)", mgr.log_file.read_text())
    assert found is not None
    child = int(found.group(1))
    try:
        assert not gone(child)
        report = mgr.stop(timeout_sec=0.5)
        # The server exits on SIGTERM but its child ignores it: the group is only gone after SIGKILL.
        assert report.forced and child in report.pids
        assert gone(child)
    finally:
        if not gone(child):
            os.kill(child, signal.SIGKILL)

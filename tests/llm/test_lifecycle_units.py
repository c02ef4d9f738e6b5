"""Pieces of the lifecycle manager that need no server: command line, environment, records, registry, groups."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import psutil
import pytest

from tests.support.lifecycle_fixtures import make_settings
from watcher.config import ServerConfig, Settings
from watcher.llm import memory
from watcher.llm.command import _cache_options, build_command, build_env, template_args
from watcher.llm.lease import ServerLease
from watcher.llm.lifecycle import LLMLifecycleManager, get_lifecycle_manager
from watcher.llm.pidrecord import PidRecord, read_record, record_path, remove_record
from watcher.llm.process import ProcessGroup, log_tail
from watcher.llm.status import StopReport


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(
        tmp_path, threads=3, gpus=[1, 3], extra_args=["--kv-unified", "-ub", "256"], cache_type_k="q8_0"
    )


def test_command_line_is_explicit_about_everything(settings: Settings) -> None:
    server = settings.server()
    command = build_command(server, Path("/opt/llama-server"), Path("/m/model.gguf"))
    pairs = dict(zip(command[1::2], command[2::2], strict=False))
    assert command[0] == "/opt/llama-server"
    assert pairs["--host"] == "127.0.0.1" and pairs["--port"] == str(server.port)
    assert pairs["--ctx-size"] == "4096" and pairs["--model"] == "/m/model.gguf"
    assert pairs["--n-gpu-layers"] == "99" and pairs["--parallel"] == "1"
    assert pairs["--cache-type-k"] == "q8_0" and pairs["--cache-type-v"] == "f16" and pairs["--threads"] == "3"
    assert command[-3:] == ("--kv-unified", "-ub", "256")
    assert build_env(server)["CUDA_VISIBLE_DEVICES"] == "1,3"
    assert _cache_options(server.extra_args) == (True, False, 256)


def test_no_gpus_configured_leaves_cuda_visible_devices_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "7")
    assert build_env(make_settings(tmp_path).server())["CUDA_VISIBLE_DEVICES"] == "7"


def test_one_manager_per_config_and_server_shared_by_threads(tmp_path: Path) -> None:
    first = make_settings(tmp_path / "a")
    make_settings(tmp_path / "a", name="second")
    seen: list[LLMLifecycleManager] = []
    threads = [threading.Thread(target=lambda: seen.append(get_lifecycle_manager(first))) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({id(m) for m in seen}) == 1
    reloaded = make_settings(tmp_path / "a", name="second")  # same config folder and root
    assert get_lifecycle_manager(reloaded, "second") is not seen[0]
    assert get_lifecycle_manager(make_settings(tmp_path / "b")) is not seen[0]


def test_manager_is_a_server_lease(settings: Settings) -> None:
    mgr = LLMLifecycleManager(settings)
    lease: ServerLease = mgr
    assert lease.name == "primary" and lease.base_url == f"http://127.0.0.1:{settings.server().port}"
    with lease.in_use(), lease.in_use():
        assert mgr.status().in_flight == 2
    assert mgr.status().in_flight == 0


def test_idle_seconds_left_counts_from_the_end_of_the_last_use(settings: Settings) -> None:
    mgr = LLMLifecycleManager(settings)
    assert mgr.idle_seconds_left() is None  # nothing running
    assert mgr.idle_check_and_stop(now=10**9) is None


def test_pid_record_round_trip_and_guarded_removal(tmp_path: Path) -> None:
    me = psutil.Process()
    record = PidRecord(
        server="primary", pid=me.pid, pgid=os.getpgrp(), host="127.0.0.1", port=1, binary="/b", model="/m",
        command=("/b", "--port", "1"), started_at=0.0, create_time=me.create_time(), startup=1, dies_with_parent=True,
    )  # fmt: skip
    path = record_path(tmp_path, "primary")
    record.write(path)
    assert read_record(path) == record
    assert record.process() is not None
    remove_record(path, pid=me.pid + 1)  # a newer start's record is not ours to remove
    assert path.exists()
    remove_record(path, pid=me.pid)
    assert read_record(path) is None


def test_an_unreadable_record_is_set_aside(tmp_path: Path) -> None:
    path = record_path(tmp_path, "primary")
    path.write_text("{not json")
    assert read_record(path) is None
    assert not path.exists() and list(tmp_path.glob("llm-primary.pid.bad-*"))


def test_a_server_in_our_own_group_is_signalled_alone() -> None:
    group = ProcessGroup.of(os.getpid())
    assert group.pgid == os.getpgrp() and not group.whole_group
    assert [p.pid for p in group.members()] == [os.getpid()]


def test_log_tail_is_bounded(tmp_path: Path) -> None:
    log = tmp_path / "x.log"
    log.write_text("".join(f"line {i}\n" for i in range(1000)))
    assert log_tail(log, 3) == "line 997\nline 998\nline 999"
    assert "unreadable" in log_tail(tmp_path / "missing.log")


def test_stop_report_summary() -> None:
    report = StopReport("primary", True, (42,), "pid record", True, 1.234, 2_000_000_000, None)
    assert report.summary() == (
        "llm server 'primary' (pid 42, found by pid record) killed after the stop timeout in 1.23s; RSS freed 2.00 GB"
    )
    assert StopReport("primary", False).summary() == "llm server 'primary': nothing to stop"


FAKE_NVIDIA_SMI = """#!/bin/sh
case "$1" in
  --query-gpu=*) echo "0, 1000"; echo "1, 2000" ;;
  --query-compute-apps=*) echo "1234, 500"; echo "999, 100" ;;
esac
"""


def test_gpu_memory_from_nvidia_smi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    smi = tmp_path / "nvidia-smi"
    smi.write_text(FAKE_NVIDIA_SMI)
    smi.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    memory._nvidia_smi.cache_clear()
    memory.gpu_count.cache_clear()
    try:
        assert memory.gpu_memory_used() == {0: 1000 * memory.MIB, 1: 2000 * memory.MIB}
        assert memory.gpu_count() == 2
        assert memory.gpu_memory_of([1234]) == 500 * memory.MIB
        # pid 1234 stays listed: after the bound, what it still holds is not counted as freed.
        assert memory.wait_gpu_released([1234], 600 * memory.MIB, bound_sec=0) == 100 * memory.MIB
        assert memory.wait_gpu_released([4321], 300 * memory.MIB, bound_sec=5) == 300 * memory.MIB
    finally:
        memory._nvidia_smi.cache_clear()
        memory.gpu_count.cache_clear()


def test_template_and_thinking_flags_follow_the_config_and_the_catalogue(tmp_path: Path) -> None:
    gemma = Path("/m/gemma-3-270m-q4_k_m.gguf")
    assert template_args(ServerConfig(), gemma) == ["--no-jinja", "--chat-template", "gemma", "--reasoning-budget", "0"]
    assert template_args(ServerConfig(thinking="bounded"), Path("/m/other.gguf")) == []
    named = template_args(ServerConfig(chat_template="chatml", thinking="bounded"), gemma)
    assert named == ["--no-jinja", "--chat-template", "chatml"]
    jinja = template_args(ServerConfig(chat_template_file=tmp_path / "r1.jinja", thinking="bounded"), gemma)
    assert jinja == ["--jinja", "--chat-template-file", str(tmp_path / "r1.jinja")]
    command = build_command(ServerConfig(), Path("/opt/llama-server"), gemma)
    assert command[-5:] == ("--no-jinja", "--chat-template", "gemma", "--reasoning-budget", "0")

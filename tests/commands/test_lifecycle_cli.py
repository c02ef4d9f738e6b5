"""``watcher llm start | stop | status`` against the real llama-server."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from tests.support.helpers import wait_until
from tests.support.lifecycle_fixtures import make_settings
from watcher.cli import main
from watcher.exitcodes import ExitCode

pytestmark = pytest.mark.real_server


def gone(pid: int) -> bool:
    """Exited: this test process started it, so until reaped it lingers as a zombie, which holds no memory."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.mark.timeout(90)
def test_start_outlives_the_command_then_status_and_stop(
    tmp_path: Path, llama_binary: Path, model_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = make_settings(tmp_path, binary=llama_binary, model_path=model_path)
    cli = ["--config-dir", str(settings.config_dir), "llm"]
    try:
        assert main([*cli, "start"]) == ExitCode.OK
        started = capsys.readouterr().out
        assert "primary: running at http://127.0.0.1:" in started and "18 layers (15 sliding-window)" in started
        assert main([*cli, "status", "--json"]) == ExitCode.OK
        (status,) = json.loads(capsys.readouterr().out)
        assert status["state"] == "running" and status["healthy"] and status["owner"] == "pid record"
        # 3 full layers x 4096 cells + 15 sliding-window layers x 1024 cells, 1 KiB of K and V per cell: 27 MiB.
        assert status["ctx_size"] == 4096 and status["kv_cache_est_bytes"] == 27 * 2**20
        assert status["rss_bytes"] > 0 and status["startups"] == 1
    finally:
        assert main([*cli, "stop"]) == ExitCode.OK
    assert "found by pid record) stopped in" in capsys.readouterr().out
    assert gone(status["pid"])
    assert main([*cli, "status"]) == ExitCode.OK
    assert capsys.readouterr().out.startswith("primary: stopped")


@pytest.mark.timeout(90)
def test_foreground_start_stops_the_server_on_sigterm(tmp_path: Path, llama_binary: Path, model_path: Path) -> None:
    settings = make_settings(tmp_path, binary=llama_binary, model_path=model_path)
    command = [
        sys.executable,
        "-m",
        "watcher",
        "--config-dir",
        str(settings.config_dir),
        "llm",
        "start",
        "--foreground",
    ]
    cli = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert cli.stdout is not None
        first = cli.stdout.readline()
        pid = int(first.split("(pid ")[1].split(",")[0])
        assert wait_until(lambda: "foreground" in cli.stdout.readline(), timeout=10)  # type: ignore[union-attr]
        cli.send_signal(signal.SIGTERM)
        assert cli.wait(timeout=15) == ExitCode.OK
        assert "stopped in" in cli.stdout.read()
        assert not psutil.pid_exists(pid)
    finally:
        if cli.poll() is None:
            cli.kill()
            cli.wait()


def test_unknown_server_name_is_a_config_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    settings = make_settings(tmp_path)
    assert main(["--config-dir", str(settings.config_dir), "llm", "stop", "--server", "nope"]) == ExitCode.CONFIG_ERROR
    assert "servers.nope: no such server" in capsys.readouterr().err

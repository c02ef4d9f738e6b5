"""watcher doctor: a clean table on a healthy set-up; every problem listed, and a non-zero exit, otherwise."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.helpers import free_port
from watcher.core.datadirs import SOURCE_ROOT
from watcher.llm import provision
from watcher.llm.models import DEFAULT_MODEL

pytestmark = pytest.mark.timeout(120)


def doctor(config_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "watcher", "--config-dir", str(config_dir), "doctor"],
        capture_output=True, text=True, timeout=90, check=False, cwd=config_dir.parent,
    )  # fmt: skip


@pytest.fixture
def config_dir(tmp_path: Path, provisioned: provision.InstallResult) -> Path:
    target = tmp_path / "config"
    shutil.copytree(SOURCE_ROOT / "config", target)
    path = target / "llm_server_config.json"
    data = json.loads(path.read_text())
    data["servers"]["primary"]["port"] = free_port()
    path.write_text(json.dumps(data))
    return target


def test_doctor_is_clean_on_the_default_config(config_dir: Path) -> None:
    result = doctor(config_dir)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "FAIL" not in result.stdout
    for check in ("config", "primary: binary", "primary: model", "primary: port", "grammars", "gpus"):
        assert check in result.stdout
    # The default judge's header, read by the doctor: its architecture and layers.
    assert "qwen2, 28 layers" in result.stdout and DEFAULT_MODEL == "qwen-1.5b"


def test_doctor_lists_every_problem(config_dir: Path, tmp_path: Path) -> None:
    path = config_dir / "llm_server_config.json"
    data = json.loads(path.read_text())
    data["servers"]["primary"]["model_path"] = str(tmp_path / "missing.gguf")
    path.write_text(json.dumps(data))
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", data["servers"]["primary"]["port"]))
        holder.listen()
        result = doctor(config_dir)
    assert result.returncode == 1
    assert "primary: model: llm server 'primary': model from the config does not exist" in result.stderr
    assert "primary: port:" in result.stderr and "in use by another process" in result.stderr
    assert "2 problem(s)" in result.stderr


def test_doctor_checks_the_notify_command_without_running_it(config_dir: Path, tmp_path: Path) -> None:
    path = config_dir / "watcher.json"
    data = json.loads(path.read_text())
    data["notify"]["argv"] = ["scripts/notify.sh", "--quiet"]
    path.write_text(json.dumps(data))
    result = doctor(config_dir)
    assert result.returncode == 1 and "notify command: 'scripts/notify.sh' not found (notify.argv)" in result.stderr
    script = tmp_path / "scripts" / "notify.sh"
    script.parent.mkdir()
    script.write_text("#!/bin/sh\ntouch ran\n")
    script.chmod(0o755)
    result = doctor(config_dir)
    assert result.returncode == 0, result.stdout + result.stderr
    assert str(script) in result.stdout and not (tmp_path / "ran").exists()

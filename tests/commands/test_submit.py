"""``watcher submit`` and ``watcher status`` against a daemon running in this process."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.daemon_fakes import FakeJudge, count_json, request, running_daemon, write_config
from watcher.cli import main
from watcher.config import load_settings
from watcher.exitcodes import ExitCode

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def config(tmp_path: Path) -> Path:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "step1.json").write_text('{"window": 12}')
    return write_config(tmp_path)


@pytest.fixture
def daemon(config: Path) -> Iterator[Any]:
    with running_daemon(load_settings(config, config.parent), FakeJudge()) as daemon:
        yield daemon


def cli(config: Path, *args: str) -> int:
    return main(["--config-dir", str(config), *args])


def test_submit_wait_prints_the_id_then_the_decision(
    config: Path, daemon: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = tmp_path / "mine.json"
    file.write_bytes(request("mine-1"))
    assert cli(config, "submit", str(file), "--wait", "--timeout", "20") == ExitCode.OK
    out = capsys.readouterr().out
    first_line, rest = out.split("\n", 1)
    assert first_line == "mine-1"
    assert json.loads(rest)["request_id"] == "mine-1" and json.loads(rest)["decision"] == "proceed"


def test_submit_without_wait_prints_the_id_and_leaves_the_file_in_the_spool(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = tmp_path / "r.json"
    file.write_bytes(request())
    assert cli(config, "submit", str(file)) == ExitCode.OK
    request_id = capsys.readouterr().out.strip()
    assert (config.parent / "watcher_requests" / f"{request_id}.json").read_bytes() == file.read_bytes()
    assert cli(config, "submit", str(file)) == ExitCode.OK  # the same again: a second, distinct file name
    assert count_json(config.parent / "watcher_requests") == 2


def test_submit_refuses_an_invalid_request_and_writes_nothing(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = tmp_path / "bad.json"
    file.write_text('{"type": "evaluate_step", "file": "../../etc/passwd"}')
    assert cli(config, "submit", str(file)) == ExitCode.INVALID_INPUT
    assert "leads outside" in capsys.readouterr().err
    spool = config.parent / "watcher_requests"
    assert not spool.exists() or count_json(spool) == 0


def test_submit_wait_reports_a_rejection(
    config: Path, daemon: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = tmp_path / "missing.json"
    file.write_bytes(request("no-output", file="data/not_written_yet.json"))
    assert cli(config, "submit", str(file), "--wait", "--timeout", "20") == ExitCode.INVALID_INPUT
    captured = capsys.readouterr()
    assert "step output file not found" in captured.err
    assert json.loads(captured.out.split("\n", 1)[1])["request_id"] == "no-output"


def test_submit_wait_gives_up_at_its_deadline_without_a_daemon(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = tmp_path / "r.json"
    file.write_bytes(request("lonely"))
    assert cli(config, "submit", str(file), "--wait", "--timeout", "0.3") == ExitCode.FAILURE
    assert "no decision for lonely within 0.3s" in capsys.readouterr().err


def test_status_json_with_a_running_daemon(
    config: Path, daemon: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = tmp_path / "r.json"
    file.write_bytes(request("seen-in-status"))
    assert cli(config, "submit", str(file), "--wait", "--timeout", "20") == ExitCode.OK
    capsys.readouterr()
    assert cli(config, "status", "--json") == ExitCode.OK
    report = json.loads(capsys.readouterr().out)
    assert report["daemon"]["running"] is True and report["daemon"]["pid"] > 0
    assert report["folders"]["done"] == 1 and report["folders"]["decisions"] == 1
    assert report["last_decisions"][0]["request_id"] == "seen-in-status"
    assert report["server"]["state"] == "none"
    assert cli(config, "status") == ExitCode.OK
    text = capsys.readouterr().out
    assert "daemon:  running" in text and "seen-in-status" in text


def test_status_without_a_daemon(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(config, "status", "--json") == ExitCode.OK
    report = json.loads(capsys.readouterr().out)
    assert report["daemon"] == {"running": False, "pid": None}
    assert report["server"]["state"] in ("stopped", "unknown")
    assert report["last_decisions"] == []

"""kill -9 of the daemon between a person's approval and the end of the run it started: after the restart no job
runs twice, and the approval file says what is true at each point."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.handlers.test_pipeline_requests import settings_for
from tests.support.helpers import wait_until
from tests.support.jobs.harness import records, starts
from tests.support.pipeline_files import approval_file, decision, loop_steps, write_like_the_pipeline
from watcher.cli import main
from watcher.core.datadirs import SOURCE_ROOT
from watcher.exitcodes import ExitCode
from watcher.spool.lock import holder

pytestmark = pytest.mark.timeout(180)
RID = "ch13_20260301_101010"
APPROVALS = {"approval_required": {"retrain_execution": True, "regime_reset": True, "parameter_application": True}}


def start_daemon(root: Path, config: Path, number: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(SOURCE_ROOT), "WATCHER_CONFIG_DIR": str(config), "WATCHER_ROOT": str(root),
           "WATCHER_TEST_JUDGE": "tests.support.daemon_fakes:from_env"}  # fmt: skip
    log = (root / f"daemon{number}.log").open("wb")
    process = subprocess.Popen([sys.executable, "-m", "watcher", "run"], cwd=root, env=env, stderr=log)
    lock = root / ".watcher" / "watcher.lock"
    assert wait_until(lambda: holder(lock) == process.pid or process.poll() is not None, timeout=20)
    assert process.poll() is None, (root / f"daemon{number}.log").read_text()
    return process


def test_kill_9_between_approval_and_completion(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("watcher.cli.configure_logging", lambda *args, **kwargs: None)
    release = tmp_path / "release"
    settings = settings_for(tmp_path, APPROVALS)
    config_file = settings.config_dir / "watcher.json"
    data = json.loads(config_file.read_text())
    port = int(data["learning_loop"]["steps"][0]["argv"][data["learning_loop"]["steps"][0]["argv"].index("--port") + 1])
    data["learning_loop"] = loop_steps(tmp_path, port, hold=release)  # step 5 holds until released
    config_file.write_text(json.dumps(data))
    file = tmp_path / "pending_approval.json"
    original = approval_file(RID, [3, 5, 6])
    first = start_daemon(tmp_path, settings.config_dir, 0)
    second = None
    try:
        write_like_the_pipeline(file, original)
        assert decision(settings, RID)["decision"] == "escalate"
        assert main(["--config-dir", str(settings.config_dir), "approve", RID]) == ExitCode.OK
        assert wait_until(lambda: starts(tmp_path) == ["s3", "s5"], timeout=30), starts(tmp_path)
        assert json.loads(file.read_text())["status"] == "processing_by_watcher"
        os.kill(first.pid, signal.SIGKILL)  # step 5's job, in its own session, runs on
        first.wait()
        assert json.loads(file.read_text())["status"] == "processing_by_watcher", "still true: it is running"

        second = start_daemon(tmp_path, settings.config_dir, 1)
        release.touch()
        record = decision(settings, f"{RID}.approved", timeout=60)
        assert wait_until(lambda: json.loads(file.read_text())["status"] == "completed_by_watcher", timeout=10)
    finally:
        release.touch()
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.terminate()
                process.wait(30)
    assert record["decision"] == "proceed", record.get("reasoning")
    assert starts(tmp_path) == ["s3", "s5", "s6"], "a job started twice, or step 4 ran"
    assert [line["name"] for line in records(tmp_path) if line["event"] == "end"] == ["s3", "s5", "s6"]
    after = json.loads(file.read_text())
    assert set(original) <= set(after) and after["steps_to_run"] == [3, 5, 6]

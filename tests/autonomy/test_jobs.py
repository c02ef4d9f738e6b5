"""The job runner: argument lists in their own process group, a record per run, never run twice."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.support.helpers import wait_until
from tests.support.jobs.harness import make_settings, run_until_waiting_then_release
from watcher.autonomy.jobs import JobRunner
from watcher.config import Settings
from watcher.config.jobs import JobConfig

pytestmark = pytest.mark.timeout(60)
REPO = Path(__file__).resolve().parents[2]


def py_job(code: str, **fields: Any) -> JobConfig:
    return JobConfig.model_validate(
        {"argv": [sys.executable, "-c", code], "output": "out.json", "judge_step": "1", **fields}
    )


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


def runner(settings: Settings) -> JobRunner:
    return JobRunner(settings, settings.watcher.jobs)


def test_a_job_runs_with_its_cwd_env_and_log_and_its_record_is_kept(settings: Settings) -> None:
    (settings.root / "work").mkdir()
    code = "import os; print(os.getcwd(), os.environ['MODE'], os.environ['WATCHER_JOB_ID']); raise SystemExit(3)"
    job = py_job(code, cwd="work", env={"MODE": "fast"}, log_file="logs/j.log")
    result = runner(settings).run("r1.1.j", "j", job, list(job.argv))
    assert (result.status, result.exit_code) == ("exited", 3)
    log = (settings.root / "logs/j.log").read_text()
    assert f"{settings.root / 'work'} fast r1.1.j" in log
    record = json.loads(runner(settings).record_path("r1.1.j").read_text())
    assert record["state"] == "finished" and record["exit_code"] == 3 and record["pid"] == result.pid


def test_an_overrunning_job_is_stopped_with_its_whole_group(settings: Settings) -> None:
    # The job starts a grandchild and both sleep: the timeout must stop the group, not just the leader.
    code = (
        "import subprocess, sys, time; "
        "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
        "print(p.pid, flush=True); time.sleep(60)"
    )
    job = py_job(code, timeout_sec=1.0, log_file="j.log")
    result = runner(settings).run("r2.1.j", "j", job, list(job.argv))
    assert result.status == "timed_out" and result.exit_code == -signal.SIGTERM
    grandchild = int((settings.root / "j.log").read_text().split()[-1])
    assert wait_until(lambda: not _alive(grandchild), timeout=5)


def test_a_finished_job_is_not_run_again(settings: Settings, tmp_path: Path) -> None:
    marker = tmp_path / "runs.txt"
    job = py_job(f"open({str(marker)!r}, 'a').write('x')")
    first = runner(settings).run("r3.1.j", "j", job, list(job.argv))
    second = runner(settings).run("r3.1.j", "j", job, list(job.argv))
    assert marker.read_text() == "x"
    assert (first.status, second.status, second.exit_code) == ("exited", "recovered", 0)


def test_a_job_that_may_have_started_is_reported_unknown_not_started(settings: Settings, tmp_path: Path) -> None:
    marker = tmp_path / "runs.txt"
    job = py_job(f"open({str(marker)!r}, 'a').write('x')")
    r = runner(settings)
    r.record_path("r4.1.j").parent.mkdir(parents=True)
    r.record_path("r4.1.j").write_text(json.dumps({"state": "starting", "started_epoch": 1.0}))
    result = r.run("r4.1.j", "j", job, list(job.argv))
    assert result.status == "unknown" and result.exit_code is None and "may have run" in result.note
    assert not marker.exists()


def test_a_job_whose_process_is_gone_is_finished_unobserved(settings: Settings) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    r = runner(settings)
    r.record_path("r5.1.j").parent.mkdir(parents=True)
    record = {"state": "running", "pid": dead.pid, "create_time": 1.0, "started_epoch": 1.0}
    r.record_path("r5.1.j").write_text(json.dumps(record))
    result = r.run("r5.1.j", "j", py_job("raise SystemExit(9)"), ["x"])
    assert result.status == "finished_unobserved" and result.exit_code is None


DRIVER = """
import sys
sys.path.insert(0, {repo!r})
from pathlib import Path
from watcher.config import load_settings
from watcher.config.jobs import JobConfig
from watcher.autonomy.jobs import JobRunner
settings = load_settings(Path({config!r}), root=Path({root!r}))
job = JobConfig.model_validate_json({job!r})
JobRunner(settings, settings.watcher.jobs).run("r6.1.hold", "hold", job, list(job.argv))
"""


def test_after_a_restart_a_running_job_is_waited_for_not_started_again(settings: Settings, tmp_path: Path) -> None:
    release, starts = tmp_path / "release", tmp_path / "starts.txt"
    code = (
        f"import os, time, pathlib; open({str(starts)!r}, 'a').write(str(os.getpid()) + '\\n'); "
        f"p = pathlib.Path({str(release)!r}); deadline = time.time() + 60\n"
        "while not p.exists() and time.time() < deadline: time.sleep(0.02)"
    )
    job = py_job(code)
    driver = DRIVER.format(repo=str(REPO), config=str(settings.config_dir), root=str(settings.root),
                           job=job.model_dump_json())  # fmt: skip
    first_daemon = subprocess.Popen([sys.executable, "-c", driver], start_new_session=True)
    try:
        r = runner(settings)
        assert wait_until(lambda: _state(r, "r6.1.hold") == "running" and starts.exists(), timeout=20)
        os.kill(first_daemon.pid, signal.SIGKILL)  # the watcher dies; the job, in its own session, carries on
        first_daemon.wait()
        job_pid = int(starts.read_text().split()[0])
        assert _alive(job_pid)

        results = run_until_waiting_then_release(lambda: r.run("r6.1.hold", "hold", job, list(job.argv)), release)
        assert results and results[0].status == "adopted" and results[0].pid == job_pid
        assert starts.read_text().split() == [str(job_pid)], "the job was started a second time"

    finally:
        release.touch()  # whatever failed, the held job ends
        if first_daemon.poll() is None:
            first_daemon.kill()
            first_daemon.wait()


def _state(r: JobRunner, job_id: str) -> str | None:
    record = r.load_record(job_id)
    return record.get("state") if record else None


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_a_command_that_cannot_start_is_a_failed_run_not_an_unknown_one(settings: Settings) -> None:
    job = JobConfig.model_validate({"argv": ["no-such-program-xyz"], "output": "o.json", "judge_step": "1"})
    result = runner(settings).run("r7.1.j", "j", job, list(job.argv))
    assert (result.status, result.exit_code) == ("exited", 127)
    assert "cannot start 'no-such-program-xyz'" in result.note

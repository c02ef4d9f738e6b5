"""Step outputs the pipeline rewrites while a step runs, and outputs larger than the request size cap."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.daemon_fakes import FakeJudge, count_json, running_daemon, write_config
from tests.support.helpers import wait_until
from watcher.commands.status import render
from watcher.config import Settings, load_settings
from watcher.core.ids import sha256_hex

pytestmark = pytest.mark.timeout(90)

IN_PROGRESS = {"status": "in_progress", "completed_trials": 3, "total_trials": 50, "note": "No successful trials yet"}
COMPLETE = {"status": "complete", "completed_trials": 50, "total_trials": 50, "window_size": 4}


def settings_for(root: Path) -> Settings:
    config = write_config(root, max_bytes=4096)
    file = config / "watcher.json"
    data = json.loads(file.read_text())
    data["steps"]["1"]["ready_when"] = "status != 'in_progress'"
    data["steps"]["2.5"] = {
        "name": "Survivors",
        "output_glob": "pipeline_outputs/survivors.json",
        "schema_file": "step2_bidirectional_sieve.schema.json",
        "stream": {"fields": {"score": {"path": "score"}}},
    }
    file.write_text(json.dumps(data))
    return load_settings(config, root)


def waiting(daemon: object) -> list[dict[str, str]]:
    snapshot = daemon.state.snapshot("running", daemon.load())  # type: ignore[attr-defined]
    return list(snapshot["waiting_steps"])


def test_an_output_is_judged_only_once_its_step_has_finished(tmp_path: Path) -> None:
    judge = FakeJudge()
    output = tmp_path / "pipeline_outputs" / "step1.json"
    output.parent.mkdir()
    with running_daemon(settings_for(tmp_path), judge) as daemon:
        output.write_text(json.dumps(IN_PROGRESS))
        assert wait_until(lambda: bool(waiting(daemon)), timeout=10)
        [entry] = waiting(daemon)
        assert entry == {"file": str(output), "step": "1", "state": "waiting for step 1 to finish"}
        text = render({"daemon": {"running": True, "pid": 1, "waiting_steps": [entry]}, "server": {},
                       "folders": {}, "last_decisions": []})  # fmt: skip
        assert f"waiting: {output}: waiting for step 1 to finish" in text
        daemon.state.write("running")
        metrics = (tmp_path / ".watcher" / "watcher.prom").read_text()
        assert 'watcher_step_outputs_waiting{step="1"} 1' in metrics
        output.write_text(json.dumps({**IN_PROGRESS, "completed_trials": 9}))  # rewritten, still running
        assert wait_until(lambda: daemon.metrics.outcomes["waiting"] >= 1, timeout=10)
        assert not judge.calls and count_json(tmp_path / "watcher_decisions") == 0
        output.write_text(json.dumps(COMPLETE))
        ready_id = f"step1-{sha256_hex(output.read_bytes())[:16]}"
        assert wait_until(lambda: judge.calls[ready_id] == 1, timeout=10)
        assert wait_until(lambda: not waiting(daemon), timeout=10)
    assert dict(judge.calls) == {ready_id: 1}  # judged once, when ready; the in-progress versions never
    assert not any((tmp_path / "watcher_requests" / "rejected").glob("*"))


def test_an_output_over_the_request_size_cap_is_hashed_by_streaming_and_judged(tmp_path: Path) -> None:
    judge = FakeJudge()
    output = tmp_path / "pipeline_outputs" / "survivors.json"
    output.parent.mkdir()
    settings = settings_for(tmp_path)
    records = [{"seed": i, "score": 0.5, "skip_mode": "constant", "intersection_ratio": 0.7} for i in range(500)]
    with running_daemon(settings, judge):
        output.write_text(json.dumps(records))
        assert output.stat().st_size > settings.watcher.limits.max_file_bytes
        expected = f"step2.5-{sha256_hex(output.read_bytes())[:16]}"
        assert wait_until(lambda: judge.calls[expected] == 1, timeout=10)
    assert (tmp_path / "watcher_decisions" / f"{expected}.json").exists()
    assert not any((tmp_path / "watcher_requests" / "rejected").glob("*"))

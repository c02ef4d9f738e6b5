"""End to end with the real llama-server and the daemon: a chapter_13 request -> selfplay -> judged -> learning loop
(a retry asks the real model for adjustments) -> one decision with the whole trace. The server is up when the
request arrives; every job must find its port silent."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.support.daemon_fakes import running_daemon
from tests.support.jobs.harness import make_settings, records, starts
from watcher.cli import main
from watcher.commands.run import build_parts
from watcher.exitcodes import ExitCode

pytestmark = [pytest.mark.real_server, pytest.mark.timeout(420)]

# The checks settle every output except through the model's adjustment: "meta" fails its hard check at
# learning_rate 0.1 (retry), and passes clearly at 0.05 or below.
CHECKS = {
    "3": [{"path": "records", "op": ">=", "value": 50, "message": "too few survivors scored"}],
    "4": [
        {"path": "_meta_optimizer.confidence", "op": ">=", "value": 0.8, "message": "calibration confidence below 0.8"}
    ],
    "5": [{"path": "training_metrics.r2", "op": ">=", "value": 0.5, "message": "validation r2 below 0.5"}],
}
REQUEST = {
    "type": "chapter_13",
    "id": "e2e-chapter13",
    "source": "test",
    "advice": {
        "actions": [
            {"action": "adjust_parameter", "parameter": "games", "current": 100, "proposed": 200, "reason": "more"},
            {"action": "run_selfplay", "reason": "fresh selfplay data"},
            {"action": "run_learning_loop", "reason": "retrain on it"},
        ],
        "risk": "low",
        "confidence": 0.9,
        "reasoning": "stale selfplay data and a flat validation AUC",
    },
}


def steps(configured: dict[str, Any]) -> dict[str, Any]:
    out = {number: step | {"ask_model": "borderline"} for number, step in configured.items()}
    out["4"] |= {"on_hard_failure": "retry"}
    return out


def test_chapter_13_request_end_to_end(
    tmp_path: Path, llama_binary: Path, model_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    monkeypatch.setattr("watcher.cli.configure_logging", lambda *args, **kwargs: None)
    settings = make_settings(tmp_path, steps=steps, checks=CHECKS)
    request_file = tmp_path / "request.json"
    request_file.write_text(json.dumps(REQUEST))
    judge, lifecycle, factory = build_parts(settings)
    lifecycle.ensure_running()  # as after earlier evaluations: the dispatcher must stop it before any job
    server_pid = lifecycle.status().pid
    with running_daemon(settings, judge, lifecycle, judge_factory=factory):
        args = ["--config-dir", str(settings.config_dir), "submit", str(request_file), "--wait", "--timeout", "360"]
        code = main(args)
        out = capsys.readouterr().out
        assert code == ExitCode.OK, out
        startups = lifecycle.status().startups
    decision = json.loads(out.split("\n", 1)[1])
    assert decision["request_id"] == "e2e-chapter13" and decision["request_type"] == "chapter_13"
    assert [p["verdict"] for p in decision["policy"]["proposals"]] == ["approved"] * 3

    adjusted, selfplay, loop = decision["actions"]
    assert (adjusted["parameter"], adjusted["before"], adjusted["after"]) == ("games", 100, 200)
    [played] = selfplay["runs"]
    assert played["parameters"]["games"] == 200 and played["job"]["exit_code"] == 0
    assert played["server_stop"]["stopped"] and server_pid in played["server_stop"]["pids"]
    assert played["judgement"]["decision"] == "proceed" and played["judgement"]["step"] == "5"

    runs = loop["runs"]
    assert [(r["name"], r["decision"]) for r in runs[:2]] == [("scoring", "proceed"), ("meta", "retry")]
    adjustment = runs[1]["adjustment"]
    asked = adjustment.get("record", {}).get("attempts", [])
    assert asked or any("no validated parameter adjustment" in r for r in adjustment["reasons"])
    assert all(a["grammar"] in ("parameter_adjustment", "json_generic", None) for a in asked)
    assert startups >= 2, "the server was not started again to ask for the adjustment"
    if adjustment["applied"]:
        # The model's change was within policy: the step ran again with it, the server stopped first.
        assert runs[2]["name"] == "meta" and runs[2]["parameters"] == adjustment["applied"]
        assert runs[2]["server_stop"]["stopped"]
    else:
        assert decision["decision"] == "escalate" and "step meta: no rerun" in decision["reasons"][0]
        escalation = json.loads(Path(decision["escalation"]).read_text())
        assert escalation["executed"] is True and escalation["trace"]["actions"][2]["runs"] == runs

    lines = records(tmp_path)
    assert starts(tmp_path)[:3] == ["selfplay", "scoring", "meta"]
    assert lines and not [line for line in lines if line["port_answered"]], "llama-server answered during a job"
    assert lifecycle.status().state == "stopped"

"""End to end with the real llama-server: submit -> grammar-constrained decision; a watched step output is
judged; the server stops after its idle timeout, with the daemon still running."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import psutil
import pytest

from tests.support.daemon_fakes import running_daemon
from tests.support.helpers import wait_until
from tests.support.lifecycle_fixtures import make_settings
from watcher.cli import main
from watcher.commands.run import build_parts
from watcher.config import load_settings
from watcher.core.datadirs import SOURCE_ROOT
from watcher.exitcodes import ExitCode

pytestmark = [pytest.mark.real_server, pytest.mark.timeout(900)]
IDLE_SEC = 3.0


def test_submit_and_watch_with_the_real_server(
    tmp_path: Path, llama_binary: Path, model_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make_settings(tmp_path, binary=llama_binary, model_path=model_path, idle_timeout_sec=IDLE_SEC)
    watcher_json = tmp_path / "config" / "watcher.json"
    config = json.loads(watcher_json.read_text())
    config["steps"]["1"]["ask_model"] = "always"  # the model judges even an output the checks could settle
    config["evaluation"]["request_timeout_sec"] = 400  # a busy CI machine generates slowly; no retries here
    watcher_json.write_text(json.dumps(config))
    settings = load_settings(tmp_path / "config", root=tmp_path)
    examples = tmp_path / "examples" / "step_outputs"
    examples.mkdir(parents=True)
    shutil.copy(SOURCE_ROOT / "examples" / "step_outputs" / "step1_good.json", examples)
    shutil.copy(SOURCE_ROOT / "examples" / "step_outputs" / "bidirectional_survivors.json", examples)
    judge, lifecycle, factory = build_parts(settings)
    with running_daemon(settings, judge, lifecycle, judge_factory=factory, drain_timeout=30):
        # The quick start: submit the shipped example and wait for its decision.
        example = SOURCE_ROOT / "examples" / "requests" / "evaluate_step.json"
        code = main(["--config-dir", str(settings.config_dir), "submit", str(example), "--wait", "--timeout", "420"])
        out = capsys.readouterr().out
        assert code == ExitCode.OK, out
        request_id, decision_text = out.split("\n", 1)
        decision = json.loads(decision_text)
        assert decision["request_id"] == request_id == "example-step1-good"
        assert decision["parse_method"] == "grammar_constrained"
        assert decision["decision"] in ("proceed", "retry", "escalate")
        server_pid = lifecycle.status().pid
        assert server_pid is not None

        # A step output written (in place, as the pipeline does) at its real path is judged too.
        settings.pipeline_path("bidirectional_survivors.json").write_bytes(
            (examples / "bidirectional_survivors.json").read_bytes()
        )
        output = settings.pipeline_path("optimal_window_config.json")
        output.write_bytes((examples / "step1_good.json").read_bytes())
        decisions = settings.path("watcher_decisions")
        assert wait_until(lambda: any(p.name.startswith("step1-") for p in decisions.iterdir()), timeout=420)
        [step_decision] = [p for p in decisions.iterdir() if p.name.startswith("step1-")]
        assert json.loads(step_decision.read_text())["parse_method"] == "grammar_constrained"

        # Idle: the daemon's loop stops the server, the process is gone.
        assert wait_until(lambda: lifecycle.status().state == "stopped", timeout=IDLE_SEC + 30)
        assert wait_until(lambda: not psutil.pid_exists(server_pid), timeout=10)
    status = json.loads(settings.path(".watcher/status.json").read_text())
    # The request, step 1 and the survivors beside it (step 2 of the shipped profile).
    assert status["outcomes"]["decided"] == 3 and status["server"]["stops"] >= 1

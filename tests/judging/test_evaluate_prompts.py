"""Prompts: the output summary stays within its bound, the turn format follows the server, every grammar has a
shape description naming each of its keys."""

from __future__ import annotations

import json

import pytest

from watcher.config import StepConfig
from watcher.judging.answers import GRAMMAR_MODELS
from watcher.judging.prompts import ANSWER_SHAPES, in_turns, step_prompt, summarize, turn_format

pytestmark = pytest.mark.timeout(30)

STEP = StepConfig(name="Full Scoring", output_glob="x.json", schema_file="s.json", instructions="Mind the NaNs.")


def test_a_small_output_is_summarised_whole() -> None:
    data = {"best": {"score": 0.81}, "warnings": []}
    assert json.loads(summarize(data, 200)) == data


@pytest.mark.parametrize("limit", [200, 1000, 4000])
def test_a_large_output_is_shortened_within_the_limit(limit: int) -> None:
    data = {"trials": [{"i": i, "score": i / 1000, "note": "x" * 300} for i in range(500)], "best": {"score": 0.9}}
    text = summarize(data, limit)
    assert len(text) <= limit
    assert '"trials":' in text


def test_lists_are_shortened_before_the_text_is_cut() -> None:
    text = summarize({"best": 0.9, "trials": list(range(1000))}, 400)
    assert text.endswith("}") and "more" in text and '"best":0.9' in text


def test_an_output_too_big_even_when_shortened_is_cut_with_a_marker() -> None:
    text = summarize({f"key_{i}": i for i in range(2000)}, 300)
    assert len(text) <= 300 and text.endswith("...(cut)")


@pytest.mark.parametrize(
    ("template", "model", "expected"),
    [
        ("{{ '<|im_start|>' }}", "/models/gemma-3-270m.gguf", "gemma"),  # llama-server's fallback template
        ("<start_of_turn>user", "/models/custom.gguf", "gemma"),
        ("{{ '<|im_start|>' }}", "/models/qwen2.5-14b-instruct.gguf", "chatml"),
        ("", None, "gemma"),
    ],
)
def test_turn_format_follows_the_model_and_its_template(template: str, model: str | None, expected: str) -> None:
    assert turn_format(template, model) == expected


def test_in_turns_wraps_the_prompt_for_the_model() -> None:
    assert in_turns("hi") == "<start_of_turn>user\nhi<end_of_turn>\n<start_of_turn>model\n"
    assert in_turns("hi", "chatml") == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"


@pytest.mark.parametrize("grammar", sorted(set(GRAMMAR_MODELS) - {"json_generic"}))
def test_every_answer_shape_names_every_key_of_its_model(grammar: str) -> None:
    for key in GRAMMAR_MODELS[grammar].model_fields:
        assert f'"{key}"' in ANSWER_SHAPES[grammar]


@pytest.mark.parametrize("grammar", [g for g, model in GRAMMAR_MODELS.items() if "confidence" in model.model_fields])
def test_confidence_is_described_with_anchors_not_a_bare_range(grammar: str) -> None:
    # A bare "0 to 1" makes small models answer 0, and min_confidence then escalates every answer.
    shape = ANSWER_SHAPES[grammar]
    assert "about 0.9 when the numbers clearly support your answer" in shape
    assert '"confidence" (0 to 1)' not in shape


def test_step_prompt_has_instructions_output_findings_shape_and_feedback() -> None:
    prompt = step_prompt("3", STEP, '{"a":1}', "agent_decision", findings="FAIL hard a", feedback="json: bad")
    assert "step 3 (Full Scoring)" in prompt and "Mind the NaNs." in prompt
    assert '{"a":1}' in prompt and "FAIL hard a" in prompt
    assert ANSWER_SHAPES["agent_decision"] in prompt
    assert prompt.endswith("Your previous answer was rejected: json: bad\nAnswer again, correcting that.")

"""Prompts: the output summary stays within its bound, the fixed part of a step's prompt comes first in its own
message, every grammar has a shape description naming each of its keys in the grammar's order."""

from __future__ import annotations

import json

import pytest

from watcher.config import Check, StepConfig
from watcher.judging import verdicts
from watcher.judging.answers import GRAMMAR_MODELS
from watcher.judging.checks import run_checks
from watcher.judging.prompts import ANSWER_SHAPES, FACTS, in_short, step_messages, summarize

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


@pytest.mark.parametrize("grammar", sorted(set(GRAMMAR_MODELS) - {"json_generic"}))
def test_every_answer_shape_names_every_key_of_its_model_in_its_order(grammar: str) -> None:
    shape = ANSWER_SHAPES[grammar]
    keys = [key for key in GRAMMAR_MODELS[grammar].model_fields]
    for key in keys:
        assert f'"{key}"' in shape
    positions = [shape.index(f'"{key}"') for key in keys]
    assert positions == sorted(positions)


@pytest.mark.parametrize("grammar", [g for g, model in GRAMMAR_MODELS.items() if "confidence" in model.model_fields])
def test_confidence_is_described_with_anchors_not_a_bare_range(grammar: str) -> None:
    # A bare "0 to 1" makes small models answer 0, and min_confidence then escalates every answer.
    shape = ANSWER_SHAPES[grammar]
    assert "about 0.9 when the numbers clearly support your answer" in shape
    assert '"confidence" (0 to 1)' not in shape


CHECKS = (
    Check(path="best.score", op=">=", value=0.6, severity="hard", message="no usable window"),
    Check(path="ratio", op="between", range=(0.5, 2.0), severity="soft", message="skewed"),
)


def test_the_fixed_part_is_the_system_message_and_the_output_the_user_message() -> None:
    system, user = step_messages(
        "3", STEP, CHECKS, "agent_decision", summary='{"a":1}', findings="FAIL hard a", feedback="json: bad"
    )
    assert system["role"] == "system" and user["role"] == "user"
    text = system["content"]
    assert "step 3 (Full Scoring)" in text and "Mind the NaNs." in text
    assert "- best.score >= 0.6 (hard): otherwise no usable window" in text
    assert "- ratio between 0.5 and 2 (soft): otherwise skewed" in text
    assert FACTS in text and text.endswith(ANSWER_SHAPES["agent_decision"])
    assert '{"a":1}' not in text  # nothing of one output in the part the prompt cache shares
    assert '{"a":1}' in user["content"] and "FAIL hard a" in user["content"]
    assert user["content"].endswith("Your previous answer was rejected: json: bad\nAnswer again, correcting that.")


def test_the_fixed_part_is_identical_for_two_outputs_of_a_step() -> None:
    first = step_messages("3", STEP, CHECKS, "agent_decision", summary='{"a":1}', findings="PASS a")
    second = step_messages("3", STEP, CHECKS, "agent_decision", summary='{"a":2}', findings="FAIL a")
    assert first[0] == second[0] and first[1] != second[1]


def test_the_tally_sorts_the_check_results_into_hard_failures_weak_signals_and_clear_passes() -> None:
    report = run_checks(
        (
            *CHECKS,
            Check(path="count", op=">=", value=50, severity="hard", message="few"),
            Check(path="rate", op="<=", value=0.02, severity="soft", message="loose"),
            Check(path="count", file="survivors.json", op=">=", value=50, severity="hard", message="few written"),
        ),
        {"best": {"score": 0.62}, "ratio": 3.0, "count": 500, "rate": 0.01},
        lambda name: (True, {"count": 40}),
    )
    signals = verdicts.signals(STEP.model_copy(update={"borderline_margin": 0.1}), report)
    assert signals == verdicts.Signals(
        hard_failed=("survivors.json: count",), soft_failed=("ratio",), narrow=("best.score",), clear=2
    )
    assert in_short(signals) == (
        "In short: failed hard checks: 1 (survivors.json: count). Weak signals: 2 (failed soft checks: ratio; "
        "passed within the margin: best.score). Passed clearly: 2."
    )
    assert "failed hard checks: 0 (none)" in in_short(signals.model_copy(update={"hard_failed": ()}))

"""Prompts for judging a step output: instructions, a size-bounded summary of the file, the expected JSON shape.

The prompt goes to ``/completion`` as raw text in the model's turn format. Gemma's is the default: many Gemma
GGUF files carry no chat template, and llama-server then reports its ChatML fallback in ``/props``, so only a
ChatML template on a model that is not Gemma selects ChatML.
"""

from __future__ import annotations

import json
from typing import Any

from watcher.config import StepConfig

TURN_FORMATS: dict[str, str] = {
    "gemma": "<start_of_turn>user\n{prompt}<end_of_turn>\n<start_of_turn>model\n",
    "chatml": "<|im_start|>user\n{prompt}<|im_end|>\n<|im_start|>assistant\n",
}

# What each grammar's answer means, key by key, in the grammar's key order. Prose rather than a JSON skeleton:
# the grammar enforces the syntax, and small models copy a skeleton's placeholder texts verbatim.
# Confidence comes with anchors: told only "0 to 1", small models copy the first number and answer 0, which the
# step's min_confidence then escalates whatever the output was.
_CONFIDENCE = (
    '"confidence" (how sure you are, 0 to 1: about 0.9 when the numbers clearly support your answer, about 0.5 '
    "when they are mixed)"
)
_DECISION_KEYS = (
    f'"decision" (proceed, retry or escalate), {_CONFIDENCE}, "reasoning" (one or two sentences that cite the '
    "numbers above)"
)
_LIST_KEYS = (
    '"warnings" (a list of at most 3 short texts; empty when nothing is wrong), "suggested_parameters" (a list '
    'of at most 4 objects {"parameter", "value"}; empty unless the decision is retry)'
)
ANSWER_SHAPES: dict[str, str] = {
    "agent_decision": f"Keys in this order: {_DECISION_KEYS}, {_LIST_KEYS}.",
    "sieve_analysis": (
        f'Keys in this order: {_DECISION_KEYS}, "survivor_assessment" (an object: "forward_survivors", '
        '"reverse_survivors" and "bidirectional_survivors" copied from the output, and "verdict": too_few, '
        f"adequate or too_many), {_LIST_KEYS}."
    ),
    "parameter_adjustment": (
        'Keys in this order: "adjustments" (a list of 1 to 6 objects {"parameter", "current" (its value now), '
        f'"proposed" (the new value), "reason"}}), {_CONFIDENCE}.'
    ),
    "chapter_13": (
        'Keys in this order: "actions" (a list of 1 to 4 objects, each either {"action": "adjust_parameter", '
        '"parameter", "current", "proposed", "reason"} or {"action": run_selfplay, run_learning_loop or '
        f'no_action, "reason"}}), "risk" (low, medium or high), {_CONFIDENCE}, "reasoning" (one or two '
        "sentences)."
    ),
    "chapter_13_proposal": (
        'Keys in this order: "analysis_summary" (one or two sentences), "failure_mode" (calibration_drift, '
        "feature_relevance, window_misalignment, random_variance, regime_shift, model_overfit, data_quality or "
        f'none_detected), {_CONFIDENCE}, "recommended_action" (RETRAIN, WAIT, ESCALATE or FULL_RESET), '
        '"retrain_scope" (steps_3_5_6, steps_5_6, step_6_only, full_pipeline, or null unless RETRAIN), '
        '"parameter_proposals" (a list of at most 3 objects {"parameter", "current_value", "proposed_value", '
        '"delta" (the change as text, e.g. "-0.05"), "confidence", "rationale"}), "risk_level" (low, medium or '
        'high), "requires_human_review" (true or false), "alternative_hypothesis" (a sentence, or null).'
    ),
    "json_generic": "One JSON object.",
}

DECISION_GUIDE = (
    "Decide: proceed when the results are healthy and the next step can use them; retry when a parameter change "
    "is likely to fix the problem; escalate when a person must look (broken data, repeated failure, unclear "
    "cause)."
)


def turn_format(chat_template: str, model: str | None) -> str:
    """The name of the turn format for a server's ``/props`` chat template and model name."""
    is_gemma = "gemma" in (model or "").lower() or "<start_of_turn>" in chat_template
    return "chatml" if "<|im_start|>" in chat_template and not is_gemma else "gemma"


def in_turns(prompt: str, fmt: str = "gemma") -> str:
    return TURN_FORMATS[fmt].format(prompt=prompt)


def summarize(data: Any, limit: int) -> str:
    """Compact JSON of ``data`` in at most ``limit`` characters: long lists and texts are shortened first, and
    only if that is not enough is the text cut, with a marker saying so."""
    for items, chars in ((50, 400), (20, 200), (8, 120), (3, 60), (1, 40)):
        text = json.dumps(_shorten(data, items, chars), ensure_ascii=False, separators=(",", ":"))
        if len(text) <= limit:
            return text
    marker = " ...(cut)"
    return text[: max(0, limit - len(marker))] + marker


def _shorten(value: Any, items: int, chars: int) -> Any:
    if isinstance(value, dict):
        return {key: _shorten(item, items, chars) for key, item in value.items()}
    if isinstance(value, list):
        kept = [_shorten(item, items, chars) for item in value[:items]]
        return kept + ([f"...{len(value) - items} more"] if len(value) > items else [])
    if isinstance(value, str) and len(value) > chars:
        return value[:chars] + "..."
    return value


def step_prompt(
    step: str,
    config: StepConfig,
    summary: str,
    grammar: str,
    *,
    findings: str = "",
    feedback: str = "",
) -> str:
    """The user turn asking for a judgement of one step output."""
    parts = [
        f"You review the output of step {step} ({config.name}) of a machine-learning pipeline.",
        DECISION_GUIDE,
    ]
    if config.instructions:
        parts.append(config.instructions)
    parts.append(f"Step output (JSON, possibly shortened):\n{summary}")
    if findings:
        parts.append(f"Results of the automatic checks:\n{findings}")
    parts.append(f"Answer with one JSON object only. {ANSWER_SHAPES[grammar]}")
    if feedback:
        parts.append(f"Your previous answer was rejected: {feedback}\nAnswer again, correcting that.")
    return "\n\n".join(parts)

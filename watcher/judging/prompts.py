"""Prompts for judging a step output, as chat messages the server's chat template turns into the model's own turns.

Two messages: a system message that is the same for every output of a step (the task, the step's criteria, how
to read the checks, the answer's shape) and a user message with what changes (the output, the check results).
The fixed part comes first so llama-server's prompt cache reuses it from one evaluation of a step to the next.
The model is told that the check results are facts: small models do not compare numbers reliably, so the checks
compare and the model weighs what they found.
"""

from __future__ import annotations

import json
from typing import Any

from watcher.config import Check, StepConfig
from watcher.judging.verdicts import Signals

Message = dict[str, str]

# What each grammar's answer means, key by key, in the grammar's key order. Prose rather than a JSON skeleton:
# the grammar enforces the syntax, and small models copy a skeleton's placeholder texts verbatim.
# Confidence comes with anchors: told only "0 to 1", small models copy the first number and answer 0, which the
# step's min_confidence then escalates whatever the output was.
_CONFIDENCE = (
    '"confidence" (how sure you are, 0 to 1: about 0.9 when the numbers clearly support your answer, about 0.5 '
    "when they are mixed)"
)
FACTS = (
    "The automatic checks have compared every number with its threshold exactly; treat their PASS and FAIL as "
    "facts and do not compare the numbers again. A margin is how far a value is inside (+) or outside (-) its "
    "threshold. A failed hard check means the output cannot be used as it is: never answer proceed then. A failed "
    "soft check, or a pass within the step's margin, is a weak signal; the last line of the results counts them. "
    "One weak signal while every other check passes clearly is normal variation: proceed, unless the step's "
    "description says otherwise. Two or more weak signals at once: do not proceed; retry when a parameter change "
    "can fix them, escalate when a person must look. Your task is what the checks cannot do: weigh them together "
    "with the rest of the output."
)
_DECISION_KEYS = (
    '"reasoning" (first, before deciding: start with the number of failed hard checks and of weak signals from '
    "the last line of the results, then one sentence that weighs them; do not repeat these instructions), "
    '"decision" '
    f"(proceed, retry or escalate), {_CONFIDENCE}"
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


def step_messages(
    step: str,
    config: StepConfig,
    checks: tuple[Check, ...],
    grammar: str,
    *,
    summary: str,
    findings: str = "",
    feedback: str = "",
) -> list[Message]:
    """The system message (fixed per step) and the user message (this output) asking for one judgement."""
    return [
        {"role": "system", "content": step_instructions(step, config, checks, grammar)},
        {"role": "user", "content": output_message(summary, findings, feedback)},
    ]


def step_instructions(step: str, config: StepConfig, checks: tuple[Check, ...], grammar: str) -> str:
    """What is the same for every output of a step: task, criteria, how to read the checks, answer shape."""
    parts = [
        f"You review the output of step {step} ({config.name}) of a machine-learning pipeline.",
        DECISION_GUIDE,
    ]
    if config.instructions:
        parts.append(config.instructions)
    if checks:
        parts.append("What a good output of this step is:\n" + "\n".join(criterion(check) for check in checks))
        parts.append(FACTS)
    parts.append(f"Answer with one JSON object only. {ANSWER_SHAPES[grammar]}")
    return "\n\n".join(parts)


def criterion(check: Check) -> str:
    if check.range is not None:
        need = f"between {check.range[0]:g} and {check.range[1]:g}"
    else:
        need = f"{check.op} {check.value:g}" if check.value is not None else check.op
    return f"- {check.path} {need} ({check.severity}): otherwise {check.message}"


def in_short(signals: Signals) -> str:
    """The check results counted, last in the prompt. Without it, Qwen2.5-Coder 1.5B answered proceed at 1.00 to
    outputs whose failed hard check was in the list of check lines after a long output."""

    def listed(paths: tuple[str, ...]) -> str:
        return ", ".join(paths) if paths else "none"

    weak = len(signals.soft_failed) + len(signals.narrow)
    return (
        f"In short: failed hard checks: {len(signals.hard_failed)} ({listed(signals.hard_failed)}). Weak signals: "
        f"{weak} (failed soft checks: {listed(signals.soft_failed)}; passed within the margin: "
        f"{listed(signals.narrow)}). Passed clearly: {signals.clear}."
    )


def output_message(summary: str, findings: str, feedback: str = "") -> str:
    parts = [f"Step output (JSON, possibly shortened):\n{summary}"]
    if findings:
        parts.append(f"Results of the automatic checks (facts):\n{findings}")
    if feedback:
        parts.append(f"Your previous answer was rejected: {feedback}\nAnswer again, correcting that.")
    return "\n\n".join(parts)

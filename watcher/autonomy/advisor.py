"""Asking the model for proposals: Chapter 13 advice from diagnostics, parameter adjustments before a retry.

Both go through the evaluator's ``Asker`` (grammar-constrained, re-asked on invalid answers, validated JSON ->
schema -> model), so an answer used here is checked exactly like a step judgement. The prompts list only the
parameters the configured jobs declare, with their values in force and the policy's limits, so the model can
copy a correct ``current`` and stay inside the bounds it will be held to.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from watcher.autonomy.policy import Policy, Proposal, Value
from watcher.config import Settings
from watcher.config.jobs import LoopStepConfig
from watcher.grammars.loader import load_grammar
from watcher.judging.answers import Chapter13Advice, Chapter13Proposal, ParameterAdjustment
from watcher.judging.asking import Asker, ModelAnswer
from watcher.judging.prompts import ANSWER_SHAPES, Message, summarize
from watcher.judging.turns import turns_for
from watcher.llm.client import LlamaClient
from watcher.llm.lease import ServerLease


@dataclass(frozen=True)
class AdjustmentAnswer:
    proposals: tuple[Proposal, ...]
    confidence: float
    record: Mapping[str, Any]  # how the answer was obtained (parse method, attempts), for the trace


class Adjuster(Protocol):
    def adjust(
        self, step: LoopStepConfig, judgement: Mapping[str, Any], values: Mapping[str, Value], request_id: str
    ) -> AdjustmentAnswer: ...


def ask_grammar(
    settings: Settings, server: ServerLease, grammar_name: str, prompt: str, request_id: str | None = None
) -> ModelAnswer:
    """One validated answer in ``grammar_name``'s shape; EvaluationError when none could be obtained."""
    grammar = load_grammar(grammar_name)
    server.ensure_running()
    timeout = settings.watcher.evaluation.request_timeout_sec
    with server.in_use(), LlamaClient(server.base_url, server.name, timeout) as client:
        props = client.props()
        turns = turns_for(client, settings, props, props.model_path)

        def messages_for(feedback: str) -> list[Message]:
            retry = f"\n\nYour previous answer was rejected: {feedback}\nAnswer again, correcting that."
            return [{"role": "user", "content": prompt + (retry if feedback else "")}]

        return Asker(turns, settings.watcher.evaluation, request_id).ask(messages_for, grammar)


def answer_record(answer: ModelAnswer) -> dict[str, Any]:
    """How an answer was obtained, for traces: parse method, grammar, attempts, timings."""
    grammar = {"name": answer.grammar.name, "sha256": answer.grammar.sha256} if answer.grammar else None
    return {
        "parse_method": answer.parse_method,
        "grammar": grammar,
        "fallback_reason": answer.fallback_reason,
        "model": answer.model,
        "timings": answer.timings.model_dump(mode="json"),
        "attempts": [attempt.model_dump(mode="json") for attempt in answer.attempts],
    }


def parameter_lines(policy: Policy, values: Mapping[str, Value], names: list[str] | None = None) -> list[str]:
    """One line per parameter: value in force, type, and the limits a change must respect."""
    lines = []
    for name in names if names is not None else sorted(policy.slots):
        rule = policy.config.parameters.get(name)
        slot = policy.slots[name][0]
        if rule is None:
            lines.append(f"- {name} = {values.get(name)!r} ({slot.type}; may not be changed)")
            continue
        low = rule.minimum if rule.minimum is not None else slot.minimum
        high = rule.maximum if rule.maximum is not None else slot.maximum
        limits = [f"from {low}" if low is not None else "", f"to {high}" if high is not None else ""]
        if rule.max_change is not None:
            limits.append(f"change at most {rule.max_change}")
        if rule.max_change_ratio is not None:
            limits.append(f"change at most {rule.max_change_ratio:.0%} of the current value")
        if rule.choices or slot.choices:
            limits.append(f"one of {list(rule.choices or slot.choices or ())}")
        shown = ", ".join(part for part in limits if part)
        lines.append(f"- {name} = {values.get(name)!r} ({slot.type}{'; ' + shown if shown else ''})")
    return lines


def judgement_lines(judgement: Mapping[str, Any]) -> list[str]:
    lines = []
    for result in (judgement.get("checks") or {}).get("results", ()):
        if isinstance(result, Mapping) and not result.get("passed", True):
            lines.append(f"- failed check {result.get('path')} = {result.get('actual')!r}: {result.get('message')}")
    payload = judgement.get("payload")
    if isinstance(payload, Mapping) and payload.get("reasoning"):
        lines.append(f"- reviewer: {payload['reasoning']}")
    return lines or ["- (no details)"]


@dataclass
class ModelAdjuster:
    """Asks the model (grammar ``parameter_adjustment``) which parameters to change before a retry."""

    settings: Settings
    server: ServerLease
    policy: Policy

    def adjust(
        self, step: LoopStepConfig, judgement: Mapping[str, Any], values: Mapping[str, Value], request_id: str
    ) -> AdjustmentAnswer:
        prompt = "\n\n".join(
            [
                f"Step '{step.name}' of a machine-learning training loop was judged 'retry': its output needs "
                "another run with different parameters.",
                "Why:\n" + "\n".join(judgement_lines(judgement)),
                "Its parameters, with the values used and the limits you must respect:\n"
                + "\n".join(parameter_lines(self.policy, values, list(step.parameters))),
                "Propose concrete changes to these parameters only, each within its limits.",
                f"Answer with one JSON object only, of this shape:\n{ANSWER_SHAPES['parameter_adjustment']}",
            ]
        )
        answer = ask_grammar(self.settings, self.server, "parameter_adjustment", prompt, request_id)
        payload = answer.payload
        assert isinstance(payload, ParameterAdjustment)  # the Asker validated it against this grammar's model
        proposals = tuple(
            Proposal("adjust_parameter", a.reason, a.parameter, _scalar(a.current), _scalar(a.proposed))
            for a in payload.adjustments
        )
        return AdjustmentAnswer(proposals, payload.confidence, answer_record(answer))


ADVISOR_TASKS = {
    "chapter_13": "propose what to do next: adjust_parameter (a parameter listed below), run_selfplay, "
    "run_learning_loop, or no_action when nothing should change. Give each action a reason, then the overall "
    "risk and your confidence.",
    "chapter_13_proposal": "say what failed and recommend RETRAIN (with the steps to rerun), WAIT, ESCALATE (a "
    "person must look) or FULL_RESET, with changes to parameters listed below where they would help.",
}


def advice_prompt(
    diagnostics: Any, policy: Policy, values: Mapping[str, Value], limit: int, grammar: str = "chapter_13"
) -> str:
    actions = ", ".join(policy.config.allowed_actions)
    return "\n\n".join(
        [
            "You are the Chapter 13 advisor of a machine-learning pipeline. From the diagnostics below, "
            + ADVISOR_TASKS[grammar],
            f"Actions that may run without a person: {actions}.",
            "Parameters in force:\n" + "\n".join(parameter_lines(policy, values) or ["- (none)"]),
            f"Diagnostics (JSON, possibly shortened):\n{summarize(diagnostics, limit)}",
            f"Answer with one JSON object only, of this shape:\n{ANSWER_SHAPES[grammar]}",
        ]
    )


def advise(
    settings: Settings,
    server: ServerLease,
    policy: Policy,
    diagnostics: Any,
    values: Mapping[str, Value],
    *,
    grammar: str = "chapter_13",
) -> tuple[Chapter13Advice | Chapter13Proposal, dict[str, Any]]:
    """The advisor's proposals for ``diagnostics`` and how they were obtained; ``grammar`` picks the shape: ours
    (``chapter_13``) or the pipeline advisor's (``chapter_13_proposal``)."""
    prompt = advice_prompt(diagnostics, policy, values, settings.watcher.limits.summary_chars, grammar)
    answer = ask_grammar(settings, server, grammar, prompt)
    assert isinstance(answer.payload, Chapter13Advice | Chapter13Proposal)  # validated against the grammar's model
    return answer.payload, answer_record(answer)


def _scalar(value: object) -> Value | None:
    return value if isinstance(value, bool | int | float | str) else None

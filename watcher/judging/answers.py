"""The shapes of the model's answers, one model per grammar, and how an answer is validated.

These models are the source of truth: ``schemas/<grammar>.schema.json`` are generated from them (``make schemas``)
and the grammars in ``agent_grammars/`` mirror them,
with the same bounds. Every answer, whatever produced it, goes JSON parse -> JSON Schema -> model
(:func:`validate_answer`) before anything acts on it.
"""

from __future__ import annotations

import json
import re
from functools import cache
from typing import Annotated, Literal

import jsonschema
from pydantic import BaseModel, ConfigDict, Field, JsonValue, RootModel, ValidationError

from watcher.core.datadirs import schema_path
from watcher.errors import AnswerInvalid
from watcher.judging.verdicts import Decision

Confidence = Annotated[float, Field(ge=0, le=1, description="0..1; the grammar allows at most three decimals.")]
Reasoning = Annotated[str, Field(min_length=1, max_length=400)]
Reason = Annotated[str, Field(min_length=1, max_length=200)]
ParameterName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_.]{0,63}$")]
Number = Annotated[float, Field(allow_inf_nan=False)]
# A parameter value: a number, a short text, a boolean or null.
Scalar = bool | int | Number | Annotated[str, Field(max_length=100)] | None


class Answer(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class SuggestedParameter(Answer):
    parameter: ParameterName
    value: Scalar


class AgentDecision(Answer):
    """Grammar ``agent_decision``: the judgement of one step output. The reasoning comes first so the model writes
    its analysis before it commits to a decision."""

    reasoning: Reasoning
    decision: Decision
    confidence: Confidence
    warnings: list[Annotated[str, Field(min_length=1, max_length=160)]] = Field(max_length=3)
    suggested_parameters: list[SuggestedParameter] = Field(max_length=4)


class SurvivorAssessment(Answer):
    forward_survivors: int = Field(ge=0, le=999_999_999_999)
    reverse_survivors: int = Field(ge=0, le=999_999_999_999)
    bidirectional_survivors: int = Field(ge=0, le=999_999_999_999)
    verdict: Literal["too_few", "adequate", "too_many"]


class SieveAnalysis(Answer):
    """Grammar ``sieve_analysis``: the judgement of the bidirectional sieve, with its survivor counts (reasoning
    first, as in ``agent_decision``)."""

    reasoning: Reasoning
    decision: Decision
    confidence: Confidence
    survivor_assessment: SurvivorAssessment
    warnings: list[Annotated[str, Field(min_length=1, max_length=160)]] = Field(max_length=3)
    suggested_parameters: list[SuggestedParameter] = Field(max_length=4)


class Adjustment(Answer):
    parameter: ParameterName
    current: Scalar
    proposed: Scalar
    reason: Reason


class ParameterAdjustment(Answer):
    """Grammar ``parameter_adjustment``: concrete changes before a retry."""

    adjustments: list[Adjustment] = Field(min_length=1, max_length=6)
    confidence: Confidence


class AdjustParameterAction(Answer):
    action: Literal["adjust_parameter"]
    parameter: ParameterName
    current: Scalar
    proposed: Scalar
    reason: Reason


class JobAction(Answer):
    action: Literal["run_selfplay", "run_learning_loop", "no_action"]
    reason: Reason


class Chapter13Advice(Answer):
    """Grammar ``chapter_13``: the advisor's proposed actions, their risk and the confidence in them."""

    actions: list[Annotated[AdjustParameterAction | JobAction, Field(discriminator="action")]] = Field(
        min_length=1, max_length=4
    )
    risk: Literal["low", "medium", "high"]
    confidence: Confidence
    reasoning: Reasoning


class ParameterProposal(Answer):
    """One parameter change in the pipeline advisor's shape."""

    parameter: ParameterName
    current_value: Number | None
    proposed_value: Number
    delta: Annotated[str, Field(min_length=1, max_length=20, description='The change as text, e.g. "-0.05".')]
    confidence: Confidence
    rationale: Reason


class Chapter13Proposal(Answer):
    """Grammar ``chapter_13_proposal``: the Chapter 13 advisor's proposal in the pipeline's own shape (its
    ``chapter_13.gbnf`` answer), so an advisor that already writes it is understood as it is."""

    analysis_summary: Reasoning
    failure_mode: Literal["calibration_drift", "feature_relevance", "window_misalignment", "random_variance",
                          "regime_shift", "model_overfit", "data_quality", "none_detected"]  # fmt: skip
    confidence: Confidence
    recommended_action: Literal["RETRAIN", "WAIT", "ESCALATE", "FULL_RESET"]
    retrain_scope: Literal["steps_3_5_6", "steps_5_6", "step_6_only", "full_pipeline"] | None
    parameter_proposals: list[ParameterProposal] = Field(max_length=8)
    risk_level: Literal["low", "medium", "high"]
    requires_human_review: bool
    alternative_hypothesis: Reasoning | None


class JsonGeneric(RootModel[JsonValue]):
    """Grammar ``json_generic``: any JSON value (the grammar bounds its depth, sizes and whitespace)."""


# Grammar name -> the model of its answers.
GRAMMAR_MODELS: dict[str, type[BaseModel]] = {
    "agent_decision": AgentDecision,
    "sieve_analysis": SieveAnalysis,
    "parameter_adjustment": ParameterAdjustment,
    "json_generic": JsonGeneric,
    "chapter_13": Chapter13Advice,
    "chapter_13_proposal": Chapter13Proposal,
}


def answer_schema_file(grammar: str) -> str:
    """File name in schemas/ of the JSON Schema of a grammar's answers."""
    return f"{grammar}.schema.json"


# ---------------------------------------------------------------------------------------------------------------
# Validating an answer
# ---------------------------------------------------------------------------------------------------------------

MAX_REPORTED_ERRORS = 3


@cache
def answer_validator(grammar: str) -> jsonschema.protocols.Validator:
    path = schema_path(answer_schema_file(grammar))
    schema = json.loads(path.read_text(encoding="utf-8"))
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def _reject_constant(name: str) -> None:
    raise AnswerInvalid("json", f"{name} is not JSON")


def validate_answer(grammar: str, text: str) -> BaseModel:
    """JSON parse -> the grammar's JSON Schema -> its pydantic model; AnswerInvalid names the failing stage."""
    try:
        data = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise AnswerInvalid("json", f"{exc.msg} at line {exc.lineno} column {exc.colno}") from exc
    errors = sorted(answer_validator(grammar).iter_errors(data), key=lambda e: list(e.absolute_path))
    if errors:
        shown = [f"{e.json_path}: {e.message[:200]}" for e in errors[:MAX_REPORTED_ERRORS]]
        raise AnswerInvalid("schema", "; ".join(shown))
    try:
        return GRAMMAR_MODELS[grammar].model_validate(data)
    except ValidationError as exc:
        shown = [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:MAX_REPORTED_ERRORS]]
        raise AnswerInvalid("model", "; ".join(shown)) from exc


_FENCE = re.compile(r"```(?:json)?\s*\n(.*?)```", re.DOTALL)


def json_objects(text: str) -> list[str]:
    """Every complete top-level JSON object in free text, fenced blocks first. Strict: an object must decode
    as it stands; nothing is repaired."""
    decoder = json.JSONDecoder(parse_constant=_reject_constant)
    found: list[str] = []
    for candidate in [m.group(1) for m in _FENCE.finditer(text)] + [text]:
        position = candidate.find("{")
        while position >= 0:
            try:
                value, end = decoder.raw_decode(candidate, position)
            except (json.JSONDecodeError, AnswerInvalid):
                position = candidate.find("{", position + 1)
                continue
            if isinstance(value, dict) and candidate[position:end] not in found:
                found.append(candidate[position:end])
            position = candidate.find("{", end)
    return found

"""The shapes of the model's answers, one model per grammar, and of the decision record written for each file.

These models are the source of truth: ``schemas/<grammar>.schema.json`` and ``schemas/decision_record.schema.json``
are generated from them (``python -m watcher.schemagen``) and the grammars in ``agent_grammars/`` mirror them,
with the same bounds. Every answer, whatever produced it, goes JSON parse -> JSON Schema -> model
(:func:`validate_answer`) before anything acts on it.
"""

from __future__ import annotations

import json
import re
from functools import cache
from typing import Annotated, Any, Literal

import jsonschema
from pydantic import BaseModel, ConfigDict, Field, JsonValue, RootModel, ValidationError
from pydantic.json_schema import DEFAULT_REF_TEMPLATE, GenerateJsonSchema, JsonSchemaMode

from watcher.checks import CheckReport
from watcher.judgement import Verdict
from watcher.resources import schema_path

Confidence = Annotated[float, Field(ge=0, le=1, description="0..1; the grammar allows at most three decimals.")]
Reasoning = Annotated[str, Field(min_length=1, max_length=400)]
Reason = Annotated[str, Field(min_length=1, max_length=200)]
ParameterName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_.]{0,63}$")]
Number = Annotated[float, Field(allow_inf_nan=False)]
# A parameter value: a number, a short text, a boolean or null.
Scalar = bool | int | Number | Annotated[str, Field(max_length=100)] | None
Decision = Literal["proceed", "retry", "escalate"]


class Answer(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class SuggestedParameter(Answer):
    parameter: ParameterName
    value: Scalar


class AgentDecision(Answer):
    """Grammar ``agent_decision``: the judgement of one step output."""

    decision: Decision
    confidence: Confidence
    reasoning: Reasoning
    warnings: list[Annotated[str, Field(min_length=1, max_length=160)]] = Field(max_length=3)
    suggested_parameters: list[SuggestedParameter] = Field(max_length=4)


class SurvivorAssessment(Answer):
    forward_survivors: int = Field(ge=0, le=999_999_999_999)
    reverse_survivors: int = Field(ge=0, le=999_999_999_999)
    bidirectional_survivors: int = Field(ge=0, le=999_999_999_999)
    verdict: Literal["too_few", "adequate", "too_many"]


class SieveAnalysis(Answer):
    """Grammar ``sieve_analysis``: the judgement of the bidirectional sieve, with its survivor counts."""

    decision: Decision
    confidence: Confidence
    reasoning: Reasoning
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


class JsonGeneric(RootModel[JsonValue]):
    """Grammar ``json_generic``: any JSON value (the grammar bounds its depth, sizes and whitespace)."""


# Grammar name -> the model of its answers.
GRAMMAR_MODELS: dict[str, type[BaseModel]] = {
    "agent_decision": AgentDecision,
    "sieve_analysis": SieveAnalysis,
    "parameter_adjustment": ParameterAdjustment,
    "json_generic": JsonGeneric,
    "chapter_13": Chapter13Advice,
}


def answer_schema_file(grammar: str) -> str:
    """File name in schemas/ of the JSON Schema of a grammar's answers."""
    return f"{grammar}.schema.json"


def decision_schemas() -> dict[str, type[BaseModel]]:
    """File name in schemas/ -> model, for every schema generated from this module."""
    schemas = {answer_schema_file(name): model for name, model in GRAMMAR_MODELS.items()}
    return {**schemas, "decision_record.schema.json": DecisionRecord}


# ---------------------------------------------------------------------------------------------------------------
# The decision record
# ---------------------------------------------------------------------------------------------------------------

# How the answer was obtained: grammar_constrained (the step's grammar), json_grammar_constrained (the server
# rejected it and json_generic constrained the answer), llm_http_extracted (no constraint: JSON taken from free
# text), checks_only (no model).
ParseMethod = Literal["grammar_constrained", "json_grammar_constrained", "llm_http_extracted", "checks_only"]


class Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Attempt(Record):
    """One call to the server while obtaining a decision."""

    number: int = Field(ge=1)
    method: ParseMethod = Field(description="The constraint of the call, named as the parse method it gives.")
    grammar: str | None = Field(description="Grammar or schema sent with the call; null when unconstrained.")
    n_predict: int = Field(ge=1)
    outcome: Literal["valid", "invalid", "truncated", "grammar_rejected", "server_error"]
    error: str | None = Field(None, description="Why the attempt did not give a decision.")
    stop_type: str | None = None
    tokens_predicted: int | None = None
    elapsed_ms: float = Field(ge=0)


class Timings(Record):
    prompt_ms: float = Field(0.0, ge=0, description="Prompt processing, summed over attempts.")
    predicted_ms: float = Field(0.0, ge=0, description="Generation, summed over attempts.")
    prompt_tokens: int = Field(0, ge=0)
    predicted_tokens: int = Field(0, ge=0)
    total_ms: float = Field(0.0, ge=0, description="Wall time of the whole evaluation.")


class GrammarRef(Record):
    name: str
    sha256: str


class DecisionRecord(Record):
    """What ``watcher evaluate`` prints and writes into the decisions folder."""

    record_version: Literal[1] = 1
    request_id: str | None = None
    decided_at: str = Field(description="UTC time, ISO 8601.")
    step: str
    step_name: str
    source_file: str
    source_sha256: str
    decision: Decision = Field(description="The final decision (verdict.decision).")
    confidence: float | None = Field(ge=0, le=1, description="The model's confidence; null without a model.")
    parse_method: ParseMethod
    fallback_reason: str | None = Field(description="Why the step's grammar did not produce the answer.")
    payload: JsonValue = Field(description="The validated model answer; null without a model.")
    checks: CheckReport = Field(description="The deterministic checks of the step, in config order.")
    verdict: Verdict = Field(description="The final decision, the model's, and the rule that decided.")
    grammar: GrammarRef | None = Field(description="The grammar that constrained the answer.")
    server: str | None
    model: str | None
    server_build: str | None
    timings: Timings
    attempts: list[Attempt]

    @classmethod
    def model_json_schema(
        cls,
        by_alias: bool | None = None,
        ref_template: str = DEFAULT_REF_TEMPLATE,
        schema_generator: type[GenerateJsonSchema] = GenerateJsonSchema,
        mode: JsonSchemaMode = "serialization",
        *,
        union_format: Literal["any_of", "primitive_type_array"] = "any_of",
    ) -> dict[str, Any]:
        """The schema of the record as written (serialization mode: with the check report's computed fields)."""
        return super().model_json_schema(by_alias, ref_template, schema_generator, mode, union_format=union_format)


# ---------------------------------------------------------------------------------------------------------------
# Validating an answer
# ---------------------------------------------------------------------------------------------------------------

MAX_REPORTED_ERRORS = 3


class AnswerInvalid(ValueError):
    """An answer failed one stage of validation; ``stage`` is json, schema or model. Never leaves the
    evaluator: it becomes a re-ask, and finally part of an EvaluationError."""

    def __init__(self, stage: str, message: str) -> None:
        self.stage = stage
        super().__init__(f"{stage}: {message}")


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

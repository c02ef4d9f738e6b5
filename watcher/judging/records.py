"""The decision record: what is written into the decisions folder for every request and step output.

This module is its one owner. Every kind of record (an evaluation, the checks alone, an escalation, a job plan
and its trace) is a model here; ``schemas/decision_record.schema.json`` is generated from them, and
:func:`finish_record` is the only way a record is made ready to write.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, RootModel, ValidationError
from pydantic.json_schema import DEFAULT_REF_TEMPLATE, GenerateJsonSchema, JsonSchemaMode

from watcher.errors import RecordInvalid
from watcher.judging.answers import GRAMMAR_MODELS, answer_schema_file
from watcher.judging.checks import CheckReport
from watcher.judging.verdicts import Decision, Verdict

# ---------------------------------------------------------------------------------------------------------------

# How the answer was obtained: grammar_constrained (the step's grammar), json_grammar_constrained (the server
# rejected it and json_generic constrained the answer), llm_http_extracted (no constraint: JSON taken from free
# text), checks_only (no model).
ParseMethod = Literal["grammar_constrained", "json_grammar_constrained", "llm_http_extracted", "checks_only"]
ConfidenceSource = Literal["token_probability", "verbalised"]
# Whose chat template made the prompt: config (the server config, or for a catalogue model without a template of
# its own the catalogue, names a built-in one), model (the GGUF's own),
# server_fallback (the model has none; llama-server's ChatML), unknown (the model file could not be read).
TemplateSource = Literal["config", "model", "server_fallback", "unknown"]


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
    cached_tokens: int = Field(0, ge=0, description="Prompt tokens reused from the server's prompt cache.")
    total_ms: float = Field(0.0, ge=0, description="Wall time of the whole evaluation.")


class GrammarRef(Record):
    name: str
    sha256: str


class RecordHead(Record):
    """Fields every record has. ``request_type`` and ``source`` are null for ``watcher evaluate`` output."""

    record_version: Literal[2] = 2
    request_id: str | None = None
    request_type: str | None = Field(None, description="The request type, or evaluate_step for a watched output.")
    source: str | None = Field(None, description="The name the file arrived with.")
    request_sha256: str | None = Field(
        None,
        description="sha256 of the request file as received (of the output, for a watched step output): a later "
        "request with this id and other content is a conflict, rejected.",
    )
    decided_at: str = Field(description="UTC time, ISO 8601.")
    decision: Decision


class EvaluationRecord(RecordHead):
    """The judgement of one step output: its checks and, when the policy asked it, the model's answer."""

    kind: Literal["evaluation"] = "evaluation"
    step: str
    step_name: str
    source_file: str
    source_sha256: str
    unknown_keys: list[str] = Field(
        default_factory=list,
        description="Key paths of the output its schema does not name: accepted, listed so a new key is seen.",
    )
    confidence: float | None = Field(
        ge=0, le=1, description="The confidence the policy used (see confidence_source); null without a model."
    )
    confidence_source: ConfidenceSource | None = Field(
        None,
        description="token_probability: measured from the model's token probabilities; verbalised: the "
        "number it wrote (the server sent no probabilities).",
    )
    verbalised_confidence: float | None = Field(None, ge=0, le=1, description="The confidence the model wrote.")
    template_source: TemplateSource | None = Field(
        None,
        description="Whose chat template made the prompt: model (the GGUF's own), config (named by the server "
        "config or, for a catalogue model without one, by the catalogue), server_fallback (the model has none: "
        "llama-server's ChatML fallback) or unknown.",
    )
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
    metadata: dict[str, JsonValue] | None = Field(None, description="Copied from the request, when it had any.")


class EscalationRecord(RecordHead):
    """No validated decision could be obtained from the model: a person must look; every attempt is kept."""

    kind: Literal["escalation"] = "escalation"
    decision: Literal["escalate"] = "escalate"
    reasoning: str
    attempts: list[JsonValue] = Field(description="Every call to the server, as far as it got.")


class PlanRecord(RecordHead):
    """A plan of actions (the advisor's proposals, or a job request): the policy's verdict and what ran."""

    kind: Literal["plan"] = "plan"
    reasoning: str
    policy: JsonValue = Field(description="The policy's verdict on every proposal, with its reasons.")
    actions: list[JsonValue] = Field(description="What ran, in order: each action's decision and trace.")
    reasons: list[str] | None = Field(None, description="Why the plan was escalated.")
    escalation: str | None = Field(None, description="The escalation file written for a person.")
    parameters_in_force: dict[str, JsonValue] | None = Field(None, description="Parameter values after the plan.")
    advice: JsonValue = Field(None, description="chapter_13: the advisor's proposals as received.")
    diagnostics_file: str | None = None
    diagnostics_sha256: str | None = None
    requested_by: str | None = None
    parameters: dict[str, JsonValue] | None = Field(None, description="Job requests: values for this run only.")
    pipeline_request: dict[str, JsonValue] | None = Field(
        None, description="Requests in the pipeline's layout: its own keys as received."
    )
    approval: dict[str, JsonValue] | None = Field(None, description="Who approved this run, when, and the note.")
    approval_file: dict[str, JsonValue] | None = Field(
        None, description="The pipeline's approval file: its request id, steps and the statuses written back."
    )


AnyRecord = Annotated[EvaluationRecord | EscalationRecord | PlanRecord, Field(discriminator="kind")]


class DecisionRecord(RootModel[AnyRecord]):
    """What is written into the decisions folder (``<request id>.json``); ``kind`` says which record it is."""

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


def finish_record(
    body: Mapping[str, Any],
    *,
    request_id: str,
    request_type: str,
    source: str,
    decided_at: str,
    request_sha256: str | None = None,
) -> dict[str, Any]:
    """A handler's record body with the request's head: validated against the model, JSON-ready.

    A body that does not fit its kind, or holds a NaN or an infinity, is a bug of the handler (never of the
    request) and raises ``RecordInvalid``.
    """
    head = {"request_id": request_id, "request_type": request_type, "source": source, "decided_at": decided_at}
    head |= {"request_sha256": request_sha256} if request_sha256 is not None else {}
    try:
        as_json = json.loads(json.dumps(body, allow_nan=False))  # as it will be written: tuples become lists
        record = DecisionRecord.model_validate({**as_json, **head})
    except ValidationError as exc:
        # Without the input values: the text names the fault, the same for every request that meets it.
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:5])
        raise RecordInvalid(f"a {body.get('kind')!r} record breaks its model: {problems}") from exc
    except (ValueError, TypeError) as exc:  # NaN, an infinity, or a value JSON cannot hold
        raise RecordInvalid(f"a {body.get('kind')!r} record cannot be written as JSON: {exc}") from exc
    dumped: dict[str, Any] = record.model_dump(mode="json")
    return dumped


def escalation_body(reasoning: str, attempts: list[Any]) -> dict[str, Any]:
    """The body of an escalation record; attempts made JSON-safe (they may carry exceptions' text)."""
    return {"kind": "escalation", "reasoning": reasoning, "attempts": json.loads(json.dumps(attempts, default=str))}


def decision_schemas() -> dict[str, type[BaseModel]]:
    """File name in schemas/ -> model, for every schema generated from this module."""
    schemas = {answer_schema_file(name): model for name, model in GRAMMAR_MODELS.items()}
    return {**schemas, "decision_record.schema.json": DecisionRecord}

"""Judging one step output file: schema check, deterministic checks, the model if the policy needs it, a record.

evaluate(file)
  -> step from --step or the config's output globs
  -> read (size cap) -> JSON -> the step's JSON Schema       invalid: SchemaViolation, no model call
  -> checks.run_checks -> judgement.plan
  -> if the plan needs the model: lease.ensure_running(); with lease.in_use(): Asker.ask(...)
  -> judgement.combine -> DecisionRecord
"""

from __future__ import annotations

import glob
import hashlib
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from loguru import logger

from watcher import judgement
from watcher.checks import CheckReport, run_checks
from watcher.config import Settings, StepConfig
from watcher.decisions import DecisionRecord, Timings
from watcher.errors import InputError, SchemaViolation
from watcher.grammars import grammar_for_step, load_grammar
from watcher.llm.ask import Asker, ModelAnswer
from watcher.llm.client import LlamaClient, ServerProps
from watcher.prompts import in_turns, step_prompt, summarize, turn_format
from watcher.protocols import ServerLease
from watcher.requests import decode_json, schema_errors
from watcher.resources import schema_path


@dataclass(frozen=True)
class StepOutput:
    """A step output file that matched its schema."""

    step: str
    config: StepConfig
    file: Path
    data: Any
    sha256: str


def detect_step(settings: Settings, file: Path) -> str:
    """The one step whose ``output_glob`` (relative to the root) matches ``file``; failing that, the one step
    whose schema the file matches (a copy of an output kept elsewhere)."""
    target = file.resolve()
    by_glob = [
        step
        for step, config in settings.watcher.steps.items()
        if any(Path(hit).resolve() == target for hit in glob.glob(str(settings.path(config.output_glob))))
    ]
    if len(by_glob) == 1:
        return by_glob[0]
    if by_glob:
        raise InputError(file, f"matches the output_glob of steps {', '.join(by_glob)}; name the step (--step N)")
    by_schema = steps_whose_schema_matches(settings, file)
    if len(by_schema) == 1:
        return by_schema[0]
    found = f"the schemas of steps {', '.join(by_schema)}" if by_schema else "no step's schema"
    raise InputError(file, f"matches no step's output_glob and {found}; name the step (--step N)")


def steps_whose_schema_matches(settings: Settings, file: Path) -> list[str]:
    """Read once; a file that cannot be read or parsed raises its own InputError rather than matching nothing."""
    document = decode_json(read_step_bytes(settings, file), file)
    steps = settings.watcher.steps.items()
    return [step for step, config in steps if not schema_errors(_step_validator(config.schema_file), document)]


@cache
def _step_validator(schema_file: str) -> Draft202012Validator:
    return Draft202012Validator(decode_json(schema_path(schema_file).read_bytes(), schema_path(schema_file)))


def read_step_bytes(settings: Settings, file: Path) -> bytes:
    limit = settings.watcher.limits.max_file_bytes
    try:
        with file.open("rb") as handle:
            data = handle.read(limit + 1)
    except OSError as exc:
        raise InputError(file, f"cannot read: {exc.strerror or exc}") from exc
    if len(data) > limit:
        raise InputError(file, f"larger than limits.max_file_bytes ({limit} bytes)")
    return data


def load_step_output(settings: Settings, file: Path, step: str) -> StepOutput:
    """Read and validate a step output; InputError/SchemaViolation name the file and the broken rule."""
    config = settings.watcher.steps.get(step)
    if config is None:
        raise InputError(file, f"step {step!r} is not configured; steps are {', '.join(settings.watcher.steps)}")
    data = read_step_bytes(settings, file)
    document = decode_json(data, file)
    problems = schema_errors(_step_validator(config.schema_file), document)
    if problems:
        raise SchemaViolation(file, f"does not match schema {config.schema_file} (step {step})", problems)
    return StepOutput(step, config, file, document, hashlib.sha256(data).hexdigest())


class Evaluator:
    """Judges step outputs with the server behind ``lease``; satisfies ``watcher.protocols.StepJudge``."""

    def __init__(self, settings: Settings, lease: ServerLease) -> None:
        self.settings = settings
        self.lease = lease
        self._props: ServerProps | None = None

    def judge(self, file: Path, step: str | None = None, *, request_id: str | None = None) -> dict[str, Any]:
        return self.evaluate(file, step, request_id=request_id).model_dump(mode="json")

    def evaluate(self, file: Path, step: str | None = None, *, request_id: str | None = None) -> DecisionRecord:
        started = time.monotonic()
        source = load_step_output(self.settings, file, step or detect_step(self.settings, file))
        report = run_checks(self.settings.watcher.checks.get(source.step, ()), source.data)
        planned = judgement.plan(source.config, report)
        answer = self.ask_model(source, report, request_id) if planned.ask_model else None
        decision = getattr(answer.payload, "decision", None) if answer else None
        confidence = getattr(answer.payload, "confidence", None) if answer else None
        verdict = judgement.combine(source.config, report, decision, confidence)
        record = self._record(
            source, report, verdict, answer=answer, request_id=request_id, elapsed=time.monotonic() - started
        )
        logger.bind(request_id=request_id).info(
            "step {} {}: {} ({}, rule {})", source.step, file, verdict.decision, record.parse_method, verdict.rule
        )
        return record

    def ask_model(self, source: StepOutput, report: CheckReport, request_id: str | None) -> ModelAnswer:
        grammar = load_grammar(grammar_for_step(self.settings, source.step))
        summary = summarize(source.data, self.settings.watcher.limits.summary_chars)
        findings = "\n".join(report.lines())
        # Held around the start too: the idle stop must not take the server between start and request.
        with self.lease.in_use(), self._client() as client:
            self.lease.ensure_running()
            fmt = turn_format(*self._server_facts(client))

            def prompt_for(feedback: str) -> str:
                text = step_prompt(
                    source.step, source.config, summary, grammar.name, findings=findings, feedback=feedback
                )
                return in_turns(text, fmt)

            return Asker(client, self.settings.watcher.evaluation, request_id).ask(prompt_for, grammar)

    def _client(self) -> LlamaClient:
        timeout = self.settings.watcher.evaluation.request_timeout_sec
        return LlamaClient(self.lease.base_url, self.lease.name, timeout)

    def _server_facts(self, client: LlamaClient) -> tuple[str, str | None]:
        """Chat template and model name, asked once per evaluator (the turn format depends on them)."""
        if self._props is None:
            self._props = client.props()
        return self._props.chat_template, self._props.model

    def _record(
        self,
        source: StepOutput,
        report: CheckReport,
        verdict: judgement.Verdict,
        *,
        answer: ModelAnswer | None,
        request_id: str | None,
        elapsed: float,
    ) -> DecisionRecord:
        timings = answer.timings if answer else Timings()
        grammar = answer.grammar if answer else None
        return DecisionRecord(
            request_id=request_id,
            decided_at=datetime.now(UTC).isoformat(timespec="milliseconds"),
            step=source.step,
            step_name=source.config.name,
            source_file=str(source.file),
            source_sha256=source.sha256,
            decision=verdict.decision,
            confidence=verdict.model_confidence,
            parse_method=answer.parse_method if answer else "checks_only",
            fallback_reason=answer.fallback_reason if answer else None,
            payload=answer.payload.model_dump(mode="json") if answer else None,
            checks=report,
            verdict=verdict,
            grammar=grammar,
            server=self.lease.name if answer else None,
            model=answer.model if answer else None,
            server_build=self._props.build if answer and self._props else None,
            timings=timings.model_copy(update={"total_ms": round(elapsed * 1000, 1)}),
            attempts=list(answer.attempts) if answer else [],
        )

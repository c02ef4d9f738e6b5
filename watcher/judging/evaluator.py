"""Judging one step output file: schema check, deterministic checks, the model if the policy needs it, a record.

evaluate(file)
  -> step from --step or the config's output globs
  -> read (or, for a streamed step, a summary by streaming) -> ready_when -> the step's JSON Schema
                                                  not ready: StepNotReady; invalid: SchemaViolation; no model call
  -> checks.run_checks (a check may read a second file of the step) -> verdicts.plan
  -> if the plan needs the model: lease.ensure_running(); with lease.in_use(): Asker.ask(...)
  -> verdicts.combine -> DecisionRecord
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Literal

from loguru import logger

from watcher.config import Settings
from watcher.core.clock import now_iso
from watcher.grammars.loader import grammar_for_step, load_grammar
from watcher.judging import verdicts
from watcher.judging.asking import Asker, ModelAnswer
from watcher.judging.checks import CheckReport, run_checks
from watcher.judging.prompts import Message, in_short, step_messages, summarize
from watcher.judging.records import EvaluationRecord, Timings
from watcher.judging.step_files import Companions, StepOutput, detect_step, load_step_output
from watcher.judging.turns import Turns, turns_for
from watcher.llm.client import LlamaClient, ServerProps
from watcher.llm.lease import ServerLease


class Evaluator:
    """Judges step outputs with the server behind ``lease``; satisfies ``watcher.protocols.StepJudge``."""

    def __init__(self, settings: Settings, lease: ServerLease) -> None:
        self.settings = settings
        self.lease = lease
        self._props: ServerProps | None = None
        self._turns: Turns | None = None

    def judge(self, file: Path, step: str | None = None, *, request_id: str | None = None) -> dict[str, Any]:
        return self.evaluate(file, step, request_id=request_id).model_dump(mode="json")

    def evaluate(self, file: Path, step: str | None = None, *, request_id: str | None = None) -> EvaluationRecord:
        started = time.monotonic()
        source = load_step_output(self.settings, file, step or detect_step(self.settings, file))
        checks = self.settings.watcher.checks.get(source.step, ())
        report = run_checks(checks, source.data, Companions(self.settings, source.file))
        planned = verdicts.plan(source.config, report)
        answer = self.ask_model(source, report, request_id) if planned.ask_model else None
        decision = getattr(answer.payload, "decision", None) if answer else None
        confidence = policy_confidence(answer)
        verdict = verdicts.combine(source.config, report, decision, confidence)
        record = self._record(
            source, report, verdict, answer=answer, request_id=request_id, elapsed=time.monotonic() - started
        )
        logger.bind(request_id=request_id).info(
            "step {} {}: {} ({}, rule {})", source.step, file, verdict.decision, record.parse_method, verdict.rule
        )
        return record

    def ask_model(self, source: StepOutput, report: CheckReport, request_id: str | None) -> ModelAnswer:
        grammar = load_grammar(grammar_for_step(self.settings, source.step))
        limit = self.settings.watcher.limits.summary_chars
        if source.config.stream is not None:  # what was aggregated said once, before the summary, not in it too
            data = {key: value for key, value in source.data.items() if key != "aggregated"}
            summary = f"(a summary of the file, not the file: {source.data['aggregated']})\n{summarize(data, limit)}"
        else:
            summary = summarize(source.data, limit)
        findings = "\n".join(report.lines()) + "\n\n" + in_short(verdicts.signals(source.config, report))
        # Held around the start too: the idle stop must not take the server between start and request.
        checks = tuple(self.settings.watcher.checks.get(source.step, ()))
        with self.lease.in_use(), self._client() as client:
            self.lease.ensure_running()

            def messages_for(feedback: str) -> list[Message]:
                return step_messages(
                    source.step, source.config, checks, grammar.name, summary=summary, findings=findings,
                    feedback=feedback,
                )  # fmt: skip

            asker = Asker(self._turns_of(client), self.settings.watcher.evaluation, request_id)
            return asker.ask(messages_for, grammar)

    def _client(self) -> LlamaClient:
        timeout = self.settings.watcher.evaluation.request_timeout_sec
        return LlamaClient(self.lease.base_url, self.lease.name, timeout)

    def _turns_of(self, client: LlamaClient) -> Turns:
        """The server's template facts, asked once per evaluator; the turns use this call's client."""
        if self._props is None or self._turns is None:
            self._props = client.props()
            self._turns = turns_for(client, self.settings, self._props, self._props.model_path)
        return Turns(client, self._turns.template_source, self._turns.thinking, self._turns.think_max_chars)

    def _record(
        self,
        source: StepOutput,
        report: CheckReport,
        verdict: verdicts.Verdict,
        *,
        answer: ModelAnswer | None,
        request_id: str | None,
        elapsed: float,
    ) -> EvaluationRecord:
        timings = answer.timings if answer else Timings()
        grammar = answer.grammar if answer else None
        return EvaluationRecord(
            request_id=request_id,
            decided_at=now_iso(),
            step=source.step,
            step_name=source.config.name,
            source_file=str(source.file),
            source_sha256=source.sha256,
            unknown_keys=list(source.unknown_keys),
            decision=verdict.decision,
            confidence=verdict.model_confidence,
            confidence_source=confidence_source(answer),
            verbalised_confidence=getattr(answer.payload, "confidence", None) if answer else None,
            template_source=self._turns.template_source if answer and self._turns else None,
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


def policy_confidence(answer: ModelAnswer | None) -> float | None:
    """The confidence ``min_confidence`` is held to: measured from token probabilities when the server sent them,
    else the number the model wrote."""
    if answer is None:
        return None
    if answer.token_confidence is not None:
        return answer.token_confidence
    written = getattr(answer.payload, "confidence", None)
    return float(written) if isinstance(written, int | float) else None


def confidence_source(answer: ModelAnswer | None) -> Literal["token_probability", "verbalised"] | None:
    if answer is None or getattr(answer.payload, "decision", None) is None:
        return None
    return "token_probability" if answer.token_confidence is not None else "verbalised"

"""Getting one validated answer from the model, with the fallbacks, every call recorded as an attempt.

At most ``evaluation.max_attempts`` constrained calls, then one unconstrained call. The constraints, in order:

1. the step's GBNF grammar (``grammar_constrained``). An answer that fails validation is asked again with the
   error in the prompt; an answer cut at the token limit is asked again with the limit doubled (once).
2. if the server rejects that grammar (HTTP 400): ``json_generic`` with an object at the root, which guarantees
   JSON but not the keys (``json_grammar_constrained``). Not the server's own JSON-Schema conversion: its
   strings, numbers and whitespace are unbounded, and sampling with it measured 5-10 times slower on CPU.
3. last resort, no constraint: the first JSON object in the text that passes validation
   (``llm_http_extracted``).

Whatever the constraint, the answer is validated against the step grammar's schema and model. Nothing
unvalidated is ever returned; when every attempt fails, EvaluationError carries them all.

Each prompt is made by the server from chat messages with the model's own template (:mod:`watcher.judging.turns`).
With ``bounded`` thinking every constraint is preceded by a bounded ``<think>`` section, which is dropped before
validation. Every call asks for the top token probabilities, from which the decision's confidence is measured
(:mod:`watcher.judging.confidence`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from loguru import logger
from pydantic import BaseModel

from watcher.config import Evaluation
from watcher.errors import AnswerInvalid, EvaluationError, GrammarRejected, RequestRejected
from watcher.grammars.loader import LoadedGrammar, object_fallback_grammar
from watcher.judging.answers import json_objects, validate_answer
from watcher.judging.confidence import N_PROBS, decision_confidence
from watcher.judging.records import Attempt, GrammarRef, ParseMethod, Timings
from watcher.judging.turns import Turns, answer_text, opened_thinking, with_thinking
from watcher.llm.client import CompletionResult, LlamaClient

MessagesFor = Callable[[str], list[dict[str, str]]]  # feedback on the previous answer ("" at first) -> messages


@dataclass(frozen=True)
class Constraint:
    """What the server is asked to constrain an answer with: a GBNF grammar, or nothing."""

    method: ParseMethod
    ref: GrammarRef | None
    grammar: str | None = None


def constraints_for(grammar: LoadedGrammar) -> list[Constraint]:
    fallback = object_fallback_grammar()
    return [
        Constraint("grammar_constrained", GrammarRef(name=grammar.name, sha256=grammar.sha256), grammar.text),
        Constraint("json_grammar_constrained", GrammarRef(name=fallback.name, sha256=fallback.sha256), fallback.text),
    ]


UNCONSTRAINED = Constraint("llm_http_extracted", None)


@dataclass(frozen=True)
class ModelAnswer:
    payload: BaseModel
    parse_method: ParseMethod
    grammar: GrammarRef | None  # what constrained the accepted answer
    fallback_reason: str | None  # why the step's own grammar did not produce it
    attempts: tuple[Attempt, ...]
    timings: Timings
    model: str | None
    # The decision's probability among the three decisions, from the model's token probabilities; None when the
    # answer has no decision or the server sent no probabilities.
    token_confidence: float | None = None


@dataclass
class _Run:
    """The state of one ``ask``: what has been tried, and what to try next."""

    expected: str  # the grammar whose schema and model every answer must pass
    n_predict: int
    feedback: str = ""
    fallback_reason: str | None = None
    attempts: list[Attempt] = field(default_factory=list)
    results: list[CompletionResult] = field(default_factory=list)


class Asker:
    def __init__(self, turns: Turns, evaluation: Evaluation, request_id: str | None = None) -> None:
        self.turns = turns
        self.client: LlamaClient = turns.client
        self.evaluation = evaluation
        self.log = logger.bind(request_id=request_id)

    def ask(self, messages_for: MessagesFor, grammar: LoadedGrammar) -> ModelAnswer:
        run = _Run(expected=grammar.name, n_predict=self.evaluation.max_tokens)
        plans = constraints_for(grammar)
        for _ in range(self.evaluation.max_attempts):
            if not plans:
                break
            payload = self._attempt(run, messages_for, plans[0])
            if payload is not None:
                return self._answer(run, payload, plans[0])
            if run.attempts[-1].outcome == "grammar_rejected":
                run.fallback_reason = run.fallback_reason or run.attempts[-1].error
                plans.pop(0)
        payload = self._attempt(run, messages_for, UNCONSTRAINED)
        if payload is not None:
            return self._answer(run, payload, UNCONSTRAINED)
        raise EvaluationError(
            f"no valid {grammar.name} answer after {len(run.attempts)} attempt(s): {run.attempts[-1].error}",
            [attempt.model_dump(mode="json") for attempt in run.attempts],
        )

    def _attempt(self, run: _Run, messages_for: MessagesFor, plan: Constraint) -> BaseModel | None:
        """One call; records the attempt and adjusts ``run`` for the next one. The payload when valid."""
        started = time.monotonic()
        try:
            prompt = self.turns.prompt(messages_for(run.feedback))
            result = self.client.complete(
                prompt,
                self._grammar(plan, prompt),
                n_predict=run.n_predict + (self.turns.think_max_chars if self._thinks else 0),
                temperature=self.evaluation.temperature,
                seed=self.evaluation.seed,
                n_probs=N_PROBS,
            )
        except GrammarRejected as exc:
            self._record(run, plan, "grammar_rejected", str(exc), started=started)
            return None
        except RequestRejected as exc:
            self._record(run, plan, "server_error", str(exc), started=started)
            attempts = [attempt.model_dump(mode="json") for attempt in run.attempts]
            raise EvaluationError(f"the server refused the request: {exc}", attempts) from exc
        run.results.append(result)
        return self._judge_result(run, plan, started, result)

    @property
    def _thinks(self) -> bool:
        return self.turns.thinking == "bounded"

    def _grammar(self, plan: Constraint, prompt: str) -> str | None:
        if plan.grammar is None or not self._thinks:
            return plan.grammar
        return with_thinking(plan.grammar, self.turns.think_max_chars, opened=opened_thinking(prompt))

    def _judge_result(self, run: _Run, plan: Constraint, started: float, result: CompletionResult) -> BaseModel | None:
        text = answer_text(result.content)
        candidates = [text] if plan is not UNCONSTRAINED else json_objects(text)
        if result.truncated and (plan is not UNCONSTRAINED or not candidates):
            error = f"cut at {run.n_predict} tokens"
            self._record(run, plan, "truncated", error, started=started, result=result)
            run.n_predict = max(run.n_predict, self.evaluation.max_tokens * 2)
            return None
        try:
            payload = _first_valid(run.expected, candidates)
        except AnswerInvalid as exc:
            self._record(run, plan, "invalid", str(exc), started=started, result=result)
            run.feedback = str(exc)
            return None
        self._record(run, plan, "valid", None, started=started, result=result)
        return payload

    def _record(
        self,
        run: _Run,
        plan: Constraint,
        outcome: str,
        error: str | None,
        *,
        started: float,
        result: CompletionResult | None = None,
    ) -> None:
        attempt = Attempt.model_validate(
            {
                "number": len(run.attempts) + 1,
                "method": plan.method,
                "grammar": plan.ref.name if plan.ref else None,
                "n_predict": run.n_predict,
                "outcome": outcome,
                "error": error,
                "stop_type": result.stop_type if result else None,
                "tokens_predicted": result.tokens_predicted if result else None,
                "elapsed_ms": round((time.monotonic() - started) * 1000, 1),
            }
        )
        run.attempts.append(attempt)
        log = self.log.info if outcome == "valid" else self.log.warning
        label = attempt.grammar or "no constraint"
        log("attempt {} ({}): {}{}", attempt.number, label, outcome, f": {error}" if error else "")

    def _answer(self, run: _Run, payload: BaseModel, plan: Constraint) -> ModelAnswer:
        timings = Timings(
            prompt_ms=round(sum(r.prompt_ms for r in run.results), 3),
            predicted_ms=round(sum(r.predicted_ms for r in run.results), 3),
            prompt_tokens=sum(r.tokens_evaluated for r in run.results),
            predicted_tokens=sum(r.tokens_predicted for r in run.results),
            cached_tokens=sum(r.tokens_cached for r in run.results),
        )
        last = run.results[-1] if run.results else None
        decision = getattr(payload, "decision", None)
        measured = decision_confidence(last.content, last.probs, decision) if last and decision else None
        attempts = tuple(run.attempts)
        model = last.model if last else None
        return ModelAnswer(payload, plan.method, plan.ref, run.fallback_reason, attempts, timings, model, measured)


def _first_valid(grammar: str, candidates: list[str]) -> BaseModel:
    """The first candidate that validates; AnswerInvalid of the first failure when none does."""
    if not candidates:
        raise AnswerInvalid("json", "no JSON object in the answer")
    first: AnswerInvalid | None = None
    for candidate in candidates:
        try:
            return validate_answer(grammar, candidate)
        except AnswerInvalid as exc:
            first = first or exc
    assert first is not None
    raise first

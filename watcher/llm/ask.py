"""Getting one validated answer from the model, with the fallbacks, every call recorded as an attempt.

Order of attempts (at most ``evaluation.max_attempts`` grammar-constrained ones, then one unconstrained):

1. the step's grammar (``grammar_constrained``). An answer that fails validation is asked again with the
   error in the prompt; an answer cut at the token limit is asked again with the limit doubled (once).
2. if the server rejects that grammar (HTTP 400): ``json_generic``, which only guarantees JSON; the answer is
   still validated against the step grammar's schema (``json_grammar_constrained``).
3. last resort: no grammar, and the first complete JSON object taken from the text (``llm_http_extracted``).

Nothing unvalidated is ever returned; when every attempt fails, EvaluationError carries them all.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from loguru import logger
from pydantic import BaseModel

from watcher.config import Evaluation
from watcher.decisions import AnswerInvalid, Attempt, ParseMethod, Timings, extract_json, validate_answer
from watcher.errors import EvaluationError, GrammarRejected, RequestRejected
from watcher.grammars import FALLBACK_GRAMMAR, LoadedGrammar, load_grammar
from watcher.llm.client import CompletionResult, LlamaClient

PromptFor = Callable[[str], str]  # feedback on the previous answer ("" at first) -> the full prompt


@dataclass(frozen=True)
class ModelAnswer:
    payload: BaseModel
    parse_method: ParseMethod
    grammar: LoadedGrammar | None  # the grammar that constrained the accepted answer
    fallback_reason: str | None  # why the step's own grammar did not produce it
    attempts: tuple[Attempt, ...]
    timings: Timings
    model: str | None


@dataclass
class _Run:
    """The state of one ``ask``: what has been tried, and what to try next."""

    expected: LoadedGrammar
    n_predict: int
    feedback: str = ""
    fallback_reason: str | None = None
    attempts: list[Attempt] = field(default_factory=list)
    results: list[CompletionResult] = field(default_factory=list)


class Asker:
    def __init__(self, client: LlamaClient, evaluation: Evaluation, request_id: str | None = None) -> None:
        self.client = client
        self.evaluation = evaluation
        self.log = logger.bind(request_id=request_id)

    def ask(self, prompt_for: PromptFor, grammar: LoadedGrammar) -> ModelAnswer:
        run = _Run(expected=grammar, n_predict=self.evaluation.max_tokens)
        plans = [grammar] if grammar.name == FALLBACK_GRAMMAR else [grammar, load_grammar(FALLBACK_GRAMMAR)]
        for _ in range(self.evaluation.max_attempts):
            if not plans:
                break
            payload = self._attempt(run, prompt_for, plans[0])
            if payload is not None:
                method: ParseMethod = "grammar_constrained" if plans[0] is grammar else "json_grammar_constrained"
                return self._answer(run, payload, method, plans[0])
            if run.attempts[-1].outcome == "grammar_rejected":
                run.fallback_reason = run.fallback_reason or run.attempts[-1].error
                plans.pop(0)
        payload = self._attempt(run, prompt_for, None)
        if payload is not None:
            return self._answer(run, payload, "llm_http_extracted", None)
        raise EvaluationError(
            f"no valid {grammar.name} answer after {len(run.attempts)} attempt(s): {run.attempts[-1].error}",
            [attempt.model_dump(mode="json") for attempt in run.attempts],
        )

    def _attempt(self, run: _Run, prompt_for: PromptFor, grammar: LoadedGrammar | None) -> BaseModel | None:
        """One call; records the attempt and adjusts ``run`` for the next one. The payload when valid."""
        started = time.monotonic()
        try:
            result = self.client.complete(
                prompt_for(run.feedback),
                grammar.text if grammar else None,
                n_predict=run.n_predict,
                temperature=self.evaluation.temperature,
                seed=self.evaluation.seed,
            )
        except GrammarRejected as exc:
            self._record(run, "grammar_rejected", str(exc), grammar=grammar, started=started)
            return None
        except RequestRejected as exc:
            self._record(run, "server_error", str(exc), grammar=grammar, started=started)
            attempts = [attempt.model_dump(mode="json") for attempt in run.attempts]
            raise EvaluationError(f"the server refused the request: {exc}", attempts) from exc
        run.results.append(result)
        return self._judge_result(run, grammar, started, result)

    def _judge_result(
        self, run: _Run, grammar: LoadedGrammar | None, started: float, result: CompletionResult
    ) -> BaseModel | None:
        text = result.content if grammar is not None else extract_json(result.content)
        if result.truncated and (grammar is not None or text is None):
            self._record(
                run, "truncated", f"cut at {run.n_predict} tokens", grammar=grammar, started=started, result=result
            )
            run.n_predict = max(run.n_predict, self.evaluation.max_tokens * 2)
            return None
        try:
            if text is None:
                raise AnswerInvalid("json", "no JSON object in the answer")
            payload = validate_answer(run.expected.name, text)
        except AnswerInvalid as exc:
            self._record(run, "invalid", str(exc), grammar=grammar, started=started, result=result)
            run.feedback = str(exc)
            return None
        self._record(run, "valid", None, grammar=grammar, started=started, result=result)
        return payload

    def _record(
        self,
        run: _Run,
        outcome: str,
        error: str | None,
        *,
        grammar: LoadedGrammar | None,
        started: float,
        result: CompletionResult | None = None,
    ) -> None:
        attempt = Attempt.model_validate(
            {
                "number": len(run.attempts) + 1,
                "mode": "grammar" if grammar else "unconstrained",
                "grammar": grammar.name if grammar else None,
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
        log(
            "attempt {} ({}): {}{}",
            attempt.number,
            attempt.grammar or "no grammar",
            outcome,
            f": {error}" if error else "",
        )

    def _answer(self, run: _Run, payload: BaseModel, method: ParseMethod, grammar: LoadedGrammar | None) -> ModelAnswer:
        timings = Timings(
            prompt_ms=round(sum(r.prompt_ms for r in run.results), 3),
            predicted_ms=round(sum(r.predicted_ms for r in run.results), 3),
            prompt_tokens=sum(r.tokens_evaluated for r in run.results),
            predicted_tokens=sum(r.tokens_predicted for r in run.results),
        )
        model = run.results[-1].model if run.results else None
        return ModelAnswer(payload, method, grammar, run.fallback_reason, tuple(run.attempts), timings, model)

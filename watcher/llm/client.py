"""HTTP client for one llama-server: ``/health``, ``/props``, ``/apply-template`` (the model's own chat template
turns messages into a prompt) and ``/completion`` (optionally with a GBNF grammar and token probabilities).

httpx errors never leave this module: a connection failure, a timeout or a 5xx becomes ``ServerUnavailable``;
a 400 about the grammar becomes ``GrammarRejected``; any other 4xx becomes ``RequestRejected``. Each names the
server.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import httpx

from watcher.errors import GrammarRejected, RequestRejected, ServerUnavailable


@dataclass(frozen=True)
class TokenProbs:
    """One generated token and the model's top alternatives at its place, as probabilities (before the grammar)."""

    token: str
    top: tuple[tuple[str, float], ...]


@dataclass(frozen=True)
class CompletionResult:
    content: str
    stop_type: str  # "eos", "limit" (token limit reached: the answer is truncated), "word" or "none"
    tokens_predicted: int
    tokens_evaluated: int
    prompt_ms: float
    predicted_ms: float
    model: str | None
    build: str | None = None
    tokens_cached: int = 0  # prompt tokens the server reused from its cache
    # Per generated token: its text and the top alternatives with their probabilities (when n_probs was asked).
    probs: tuple[TokenProbs, ...] = ()

    @property
    def truncated(self) -> bool:
        return self.stop_type == "limit"

    @property
    def tokens_per_second(self) -> float:
        return self.tokens_predicted / (self.predicted_ms / 1000) if self.predicted_ms > 0 else 0.0


@dataclass(frozen=True)
class ServerProps:
    model: str | None
    build: str | None
    chat_template: str
    total_slots: int | None
    model_path: str | None = None


class LlamaClient:
    """One server at ``base_url``; ``name`` is the server's name in the config, used in every error."""

    def __init__(
        self,
        base_url: str,
        name: str = "primary",
        timeout: float = 180.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.name = name
        self._timeout = timeout
        self._http = httpx.Client(
            base_url=self.base_url, timeout=httpx.Timeout(timeout, connect=5.0), transport=transport
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> LlamaClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def health(self) -> bool:
        """True when the server answers /health with 200 (503 while it loads the model)."""
        try:
            return self._http.get("/health", timeout=2.0).status_code == 200
        except httpx.HTTPError:
            return False

    def props(self) -> ServerProps:
        data = self._request("GET", "/props")
        return ServerProps(
            model=data.get("model_alias") or data.get("model_path"),
            build=data.get("build_info"),
            chat_template=str(data.get("chat_template") or ""),
            total_slots=data.get("total_slots"),
            model_path=data.get("model_path"),
        )

    def complete(
        self,
        prompt: str,
        grammar: str | None = None,
        *,
        json_schema: dict[str, Any] | None = None,
        n_predict: int = 384,
        temperature: float = 0.0,
        seed: int = 42,
        cache_prompt: bool = True,
        n_probs: int = 0,
    ) -> CompletionResult:
        body: dict[str, Any] = {
            "prompt": prompt,
            "n_predict": n_predict,
            "temperature": temperature,
            "seed": seed,
            "cache_prompt": cache_prompt,
        }
        if n_probs:
            body["n_probs"] = n_probs
        if grammar is not None and json_schema is not None:
            raise ValueError("llama-server takes a grammar or a json_schema, never both")
        if grammar is not None:
            body["grammar"] = grammar
        if json_schema is not None:
            body["json_schema"] = json_schema
        return _result(
            self._request("POST", "/completion", body, constrained=grammar is not None or json_schema is not None)
        )

    def apply_template(self, messages: list[dict[str, str]], template_kwargs: dict[str, Any] | None = None) -> str:
        """The prompt the model's chat template (or the server's fallback) makes of ``messages``, ready for
        ``/completion``: the model's own turn markers, ending where the assistant's answer starts."""
        body: dict[str, Any] = {"messages": messages}
        if template_kwargs:
            body["chat_template_kwargs"] = template_kwargs
        prompt = self._request("POST", "/apply-template", body).get("prompt")
        if not isinstance(prompt, str):
            raise ServerUnavailable(self.name, "POST /apply-template: the answer has no prompt text")
        return prompt

    def grammar_compiles(self, grammar: str) -> None:
        """Raise GrammarRejected if the server cannot parse the grammar; nothing is generated."""
        self.complete("", grammar, n_predict=1, cache_prompt=False)

    def _request(
        self, method: str, path: str, body: dict[str, Any] | None = None, *, constrained: bool = False
    ) -> dict[str, Any]:
        try:
            response = self._http.request(method, path, json=body)
        except httpx.TimeoutException as exc:
            raise ServerUnavailable(self.name, f"{method} {path}: no answer within {self._timeout:g}s") from exc
        except httpx.HTTPError as exc:
            raise ServerUnavailable(self.name, f"{method} {path} at {self.base_url}: {exc}") from exc
        if response.status_code >= 400:
            raise self._status_error(method, path, response, constrained)
        try:
            data = response.json()
        except ValueError as exc:
            raise ServerUnavailable(self.name, f"{method} {path}: answer is not JSON") from exc
        if not isinstance(data, dict):
            raise ServerUnavailable(self.name, f"{method} {path}: answer is not a JSON object")
        return data

    def _status_error(self, method: str, path: str, response: httpx.Response, constrained: bool) -> Exception:
        message = _error_message(response)
        about_grammar = "grammar" in message.lower() or "schema" in message.lower()
        if response.status_code == 400 and constrained and about_grammar:
            return GrammarRejected(self.name, message)
        text = f"{method} {path}: HTTP {response.status_code}: {message}"
        if 400 <= response.status_code < 500:
            return RequestRejected(self.name, text)
        return ServerUnavailable(self.name, text)


def _error_message(response: httpx.Response) -> str:
    try:
        data = response.json()
    except ValueError:
        return response.text[:500]
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict):
        return str(error.get("message", error))
    return str(error or data)[:500]


def _result(data: dict[str, Any]) -> CompletionResult:
    timings = data.get("timings") or {}
    return CompletionResult(
        content=str(data.get("content", "")),
        stop_type=str(data.get("stop_type") or "none"),
        tokens_predicted=int(data.get("tokens_predicted") or 0),
        tokens_evaluated=int(data.get("tokens_evaluated") or 0),
        prompt_ms=float(timings.get("prompt_ms") or 0.0),
        predicted_ms=float(timings.get("predicted_ms") or 0.0),
        model=data.get("model"),
        build=data.get("build_info"),
        # timings.cache_n: prompt tokens reused; tokens_cached (older servers) also counts the generated ones.
        tokens_cached=int(timings["cache_n"] if "cache_n" in timings else data.get("tokens_cached") or 0),
        probs=tuple(_token_probs(item) for item in data.get("completion_probabilities") or ()),
    )


def _token_probs(item: dict[str, Any]) -> TokenProbs:
    """One entry of ``completion_probabilities``, log-probabilities (the default) or probabilities
    (``post_sampling_probs``) alike."""
    alternatives = item.get("top_logprobs") or item.get("top_probs") or ()
    return TokenProbs(str(item.get("token", "")), tuple((str(a.get("token", "")), _prob(a)) for a in alternatives))


def _prob(entry: dict[str, Any]) -> float:
    if "prob" in entry:
        return float(entry["prob"])
    return math.exp(float(entry.get("logprob", float("-inf"))))

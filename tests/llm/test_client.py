"""The llama-server HTTP client: request bodies, answers, and every failure mapped to one watcher error."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.support.helpers import free_port
from watcher.errors import GrammarRejected, RequestRejected, ServerUnavailable
from watcher.llm.client import LlamaClient

pytestmark = pytest.mark.timeout(30)

COMPLETION = {
    "content": '{"a": 1}',
    "stop_type": "eos",
    "tokens_predicted": 7,
    "tokens_evaluated": 40,
    "model": "gemma-3-270m-q4_k_m.gguf",
    "timings": {"prompt_ms": 12.5, "predicted_ms": 70.0},
}


def client_for(handler: Callable[[httpx.Request], httpx.Response]) -> LlamaClient:
    return LlamaClient("http://llm.test", "primary", timeout=5, transport=httpx.MockTransport(handler))


def answer(status: int, payload: Any) -> Callable[[httpx.Request], httpx.Response]:
    return lambda request: httpx.Response(status, json=payload)


def test_complete_sends_prompt_grammar_and_sampling_settings() -> None:
    sent: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/completion"
        sent.append(json.loads(request.content))
        return httpx.Response(200, json=COMPLETION)

    result = client_for(handler).complete("judge this", 'root ::= "x"', n_predict=99, temperature=0.3, seed=7)
    assert sent == [
        {
            "prompt": "judge this",
            "grammar": 'root ::= "x"',
            "n_predict": 99,
            "temperature": 0.3,
            "seed": 7,
            "cache_prompt": True,
        }
    ]
    assert result.content == '{"a": 1}'
    assert (result.stop_type, result.tokens_predicted, result.tokens_evaluated) == ("eos", 7, 40)
    assert (result.prompt_ms, result.predicted_ms) == (12.5, 70.0)
    assert result.tokens_per_second == pytest.approx(100.0)
    assert not result.truncated


def test_complete_without_grammar_sends_none_and_reports_truncation() -> None:
    sent: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(json.loads(request.content))
        return httpx.Response(200, json={**COMPLETION, "stop_type": "limit"})

    assert client_for(handler).complete("free text").truncated
    assert "grammar" not in sent[0] and "json_schema" not in sent[0]


def test_grammar_and_json_schema_are_never_sent_together() -> None:
    with pytest.raises(ValueError, match="never both"):
        client_for(answer(200, COMPLETION)).complete("x", 'root ::= "x"', json_schema={"type": "object"})


def test_props_gives_model_build_and_template() -> None:
    props = {
        "model_path": "/models/gemma.gguf",
        "build_info": "b1-0c1e570",
        "chat_template": "<start_of_turn>",
        "total_slots": 2,
    }
    result = client_for(answer(200, props)).props()
    assert (result.model, result.build, result.chat_template, result.total_slots) == (
        "/models/gemma.gguf",
        "b1-0c1e570",
        "<start_of_turn>",
        2,
    )


@pytest.mark.parametrize(("status", "healthy"), [(200, True), (503, False)])
def test_health_is_true_only_for_200(status: int, healthy: bool) -> None:
    assert client_for(answer(status, {"status": "loading"})).health() is healthy


def test_a_grammar_the_server_cannot_parse_is_grammar_rejected() -> None:
    error = {"error": {"code": 400, "message": "Failed to initialize samplers: failed to parse grammar"}}
    with pytest.raises(GrammarRejected, match=r"'primary' rejected the grammar: .*failed to parse grammar"):
        client_for(answer(400, error)).complete("x", "root ::= nope")


def test_grammar_compiles_raises_only_for_a_rejected_grammar() -> None:
    client_for(answer(200, COMPLETION)).grammar_compiles('root ::= "x"')
    with pytest.raises(GrammarRejected):
        client_for(answer(400, {"error": {"message": "failed to parse grammar"}})).grammar_compiles("bad")


def test_other_client_errors_are_request_rejected() -> None:
    error = {"error": {"code": 400, "message": "the request exceeds the available context size"}}
    with pytest.raises(RequestRejected, match="HTTP 400: the request exceeds the available context size"):
        client_for(answer(400, error)).complete("x" * 10, 'root ::= "x"')


@pytest.mark.parametrize("status", [500, 503])
def test_server_errors_are_server_unavailable(status: int) -> None:
    with pytest.raises(ServerUnavailable, match=f"HTTP {status}"):
        client_for(answer(status, {"error": {"message": "loading model"}})).complete("x")


def test_an_answer_that_is_not_json_is_server_unavailable() -> None:
    with pytest.raises(ServerUnavailable, match="not JSON"):
        client_for(lambda request: httpx.Response(200, text="<html>")).complete("x")


def test_a_timeout_is_server_unavailable_and_names_the_limit() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    with pytest.raises(ServerUnavailable, match="no answer within 5s"):
        client_for(handler).complete("x")


def test_nothing_listening_is_server_unavailable_and_health_false() -> None:
    client = LlamaClient(f"http://127.0.0.1:{free_port()}", "spare", timeout=2)
    assert client.health() is False
    with pytest.raises(ServerUnavailable, match=r"'spare'.*POST /completion"):
        client.complete("x")
    client.close()

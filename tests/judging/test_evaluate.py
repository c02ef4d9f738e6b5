"""The evaluator offline, against a scripted llama-server: the normal path, every fallback, and the record.

``ScriptedServer`` speaks llama-server's HTTP API on a loopback port and answers each ``/completion`` with the
next entry of its script: an answer text (``stop_type`` eos), ``Truncated(text)`` (``stop_type`` limit) or
``Status(code, message)`` (an HTTP error). It is also the lease, so a test sees whether every request arrived
while the lease was held.
"""

from __future__ import annotations

import contextlib
import json
import math
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from tests.support.fake_llama_server import JsonReplyHandler, apply_template
from tests.support.helpers import free_port
from tests.support.trust_fixtures import trust_settings
from watcher import cli
from watcher.config import Settings
from watcher.core.datadirs import SOURCE_ROOT, schema_path
from watcher.errors import EvaluationError, InputError, SchemaViolation, ServerUnavailable
from watcher.exitcodes import ExitCode
from watcher.grammars.loader import load_grammar
from watcher.judging.evaluator import Evaluator
from watcher.judging.step_files import detect_step

EXAMPLES = SOURCE_ROOT / "examples" / "step_outputs"
GOOD = json.dumps(
    {
        "reasoning": "The search hit its boundary.",
        "decision": "retry",
        "confidence": 0.8,
        "warnings": [],
        "suggested_parameters": [{"parameter": "search.max_window", "value": 512}],
    }
)

pytestmark = pytest.mark.timeout(60)


@dataclass(frozen=True)
class Truncated:
    text: str


@dataclass(frozen=True)
class WithProbs:
    """An answer with ``completion_probabilities``: one token per piece, ``top`` at the decision's first token."""

    text: str
    top: dict[str, float]


@dataclass(frozen=True)
class Status:
    code: int
    message: str


class ScriptedServer:
    def __init__(self, script: list[str | Truncated | Status | WithProbs]) -> None:
        self.script = list(script)
        self.requests: list[dict[str, Any]] = []
        self.held = 0
        self.starts = 0
        self.name = "scripted"
        self._http = ThreadingHTTPServer(("127.0.0.1", free_port()), _Handler)
        self._http.owner = self  # type: ignore[attr-defined]
        self.base_url = f"http://127.0.0.1:{self._http.server_port}"
        self._thread = threading.Thread(target=self._http.serve_forever, daemon=True)
        self._thread.start()

    def ensure_running(self) -> None:
        assert self.held, "ensure_running outside in_use"
        self.starts += 1

    @contextlib.contextmanager
    def in_use(self) -> Iterator[None]:
        self.held += 1
        try:
            yield
        finally:
            self.held -= 1

    def completion(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        self.requests.append({**body, "held": self.held > 0})
        entry = self.script.pop(0)
        if isinstance(entry, Status):
            return entry.code, {"error": {"code": entry.code, "message": entry.message}}
        if isinstance(entry, WithProbs):
            return 200, {**self.answer(entry.text, "eos"), "completion_probabilities": probabilities(entry)}
        text, stop = (entry.text, "limit") if isinstance(entry, Truncated) else (entry, "eos")
        return 200, self.answer(text, stop)

    @staticmethod
    def answer(text: str, stop: str) -> dict[str, Any]:
        timings = {"prompt_ms": 10.0, "predicted_ms": 20.0, "cache_n": 30}
        return {"content": text, "stop_type": stop, "tokens_predicted": 5, "tokens_evaluated": 50,
                "model": "fake.gguf", "timings": timings}  # fmt: skip

    def close(self) -> None:
        self._http.shutdown()
        self._http.server_close()
        self._thread.join(timeout=5)


class _Handler(JsonReplyHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        props = {"model_path": "fake.gguf", "build_info": "b1-fake", "chat_template": "", "total_slots": 1}
        self.send_json(200, props if self.path == "/props" else {"status": "ok"})

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.path == "/apply-template":
            self.send_json(*apply_template(body))
        else:
            self.send_json(*self.server.owner.completion(body))  # type: ignore[attr-defined]


def probabilities(entry: WithProbs) -> list[dict[str, Any]]:
    """The answer as llama-server's tokens: everything before the decision's value, its first letter (with the
    alternatives as log-probabilities), the rest."""
    start = entry.text.index('"decision": "') + len('"decision": "')
    pieces = [entry.text[:start], entry.text[start], entry.text[start + 1 :]]
    top = [{"token": token, "logprob": math.log(p)} for token, p in entry.top.items()]
    return [{"token": piece, "logprob": 0.0, "top_logprobs": top if index == 1 else []} for index, piece in
            enumerate(pieces)]  # fmt: skip


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return trust_settings(tmp_path, ask_model={step: "always" for step in "123456"})


@contextlib.contextmanager
def scripted(*script: str | Truncated | Status) -> Iterator[ScriptedServer]:
    server = ScriptedServer(list(script))
    try:
        yield server
    finally:
        server.close()


def evaluate(settings: Settings, server: ScriptedServer, step: str = "1", kind: str = "good") -> Any:
    return Evaluator(settings, server).evaluate(EXAMPLES / f"step{step}_{kind}.json", step)


# ---------------------------------------------------------------------------------------------------------------
# The normal path and the record
# ---------------------------------------------------------------------------------------------------------------


def test_a_valid_constrained_answer_is_one_attempt_under_the_lease(settings: Settings) -> None:
    with scripted(GOOD) as server:
        record = evaluate(settings, server)
    assert record.parse_method == "grammar_constrained"
    assert record.payload == json.loads(GOOD)
    assert record.grammar.name == "agent_decision"
    assert record.grammar.sha256 == load_grammar("agent_decision").sha256
    assert [a.outcome for a in record.attempts] == ["valid"]
    assert server.starts == 1 and all(request["held"] for request in server.requests)
    sent = server.requests[0]
    assert sent["grammar"] == load_grammar("agent_decision").text
    limit = settings.watcher.evaluation.max_tokens
    assert (sent["temperature"], sent["seed"], sent["n_predict"], sent["cache_prompt"]) == (0.0, 42, limit, True)
    assert sent["n_probs"] > 0  # the decision's confidence is measured from them
    # The server's template made the turns (the fake speaks llama-server's ChatML fallback).
    assert sent["prompt"].startswith("<|im_start|>system\n") and sent["prompt"].endswith("<|im_start|>assistant\n")
    assert "<|im_start|>user\nStep output" in sent["prompt"]
    assert record.template_source == "unknown"  # the fake's model file cannot be read
    # No probabilities from this server: the written confidence is the one used, and the record says so.
    assert (record.confidence_source, record.verbalised_confidence, record.confidence) == ("verbalised", 0.8, 0.8)


def test_the_record_matches_its_schema_and_names_source_model_and_timings(settings: Settings) -> None:
    file = EXAMPLES / "step1_good.json"
    with scripted(GOOD) as server:
        record = Evaluator(settings, server).judge(file, "1", request_id="req-7")
    schema = json.loads(schema_path("decision_record.schema.json").read_text())
    jsonschema.validate(record, schema)
    assert (record["request_id"], record["step"], record["step_name"]) == ("req-7", "1", "Window Optimizer")
    assert record["source_file"] == str(file)
    assert record["source_sha256"] == __import__("hashlib").sha256(file.read_bytes()).hexdigest()
    assert (record["model"], record["server_build"], record["server"]) == ("fake.gguf", "b1-fake", "scripted")
    assert record["timings"]["prompt_ms"] == 10.0 and record["timings"]["predicted_tokens"] == 5
    assert record["verdict"]["model_decision"] == "retry" and record["decision"] == "retry"


def test_the_prompt_carries_instructions_summary_checks_and_shape(settings: Settings) -> None:
    with scripted(GOOD) as server:
        evaluate(settings, server, "1", "bad")
    prompt = server.requests[0]["prompt"]
    assert "step 1 (Window Optimizer)" in prompt
    assert '"bidirectional_count":' in prompt  # the summary of the output file
    assert "FAIL hard div(bidirectional_count, seed_count)" in prompt  # the checks' findings
    assert "In short: failed hard checks: 1 (div(bidirectional_count, seed_count))" in prompt  # and their tally
    assert "keeps a small share of the tested seeds" in prompt  # the step's instructions
    assert '"decision" (proceed, retry or escalate)' in prompt


def test_a_borderline_step_settled_by_the_checks_never_calls_the_server(tmp_path: Path) -> None:
    settings = trust_settings(tmp_path)  # the shipped config: borderline everywhere
    with scripted() as server:
        record = evaluate(settings, server, "1", "good")
    assert record.parse_method == "checks_only" and record.payload is None and record.attempts == []
    assert server.starts == 0 and server.requests == []


# ---------------------------------------------------------------------------------------------------------------
# Fallbacks
# ---------------------------------------------------------------------------------------------------------------


def test_an_invalid_answer_is_asked_again_with_the_error(settings: Settings) -> None:
    bad = GOOD.replace('"confidence": 0.8', '"confidence": 7')
    with scripted(bad, GOOD) as server:
        record = evaluate(settings, server)
    assert [a.outcome for a in record.attempts] == ["invalid", "valid"]
    assert "confidence" in (record.attempts[0].error or "")
    assert "previous answer was rejected" not in server.requests[0]["prompt"]
    assert "previous answer was rejected: schema: $.confidence" in server.requests[1]["prompt"]
    assert record.parse_method == "grammar_constrained"


def test_a_truncated_answer_is_asked_again_with_twice_the_tokens(settings: Settings) -> None:
    with scripted(Truncated(GOOD[:40]), GOOD) as server:
        record = evaluate(settings, server)
    assert [a.outcome for a in record.attempts] == ["truncated", "valid"]
    limit = settings.watcher.evaluation.max_tokens
    assert [request["n_predict"] for request in server.requests] == [limit, 2 * limit]


def test_a_rejected_grammar_falls_back_to_json_generic_and_is_flagged(settings: Settings) -> None:
    with scripted(Status(400, "failed to parse grammar"), GOOD) as server:
        record = evaluate(settings, server)
    assert record.parse_method == "json_grammar_constrained"
    assert "rejected the grammar" in (record.fallback_reason or "")
    assert record.grammar.name == "json_generic:object"
    assert "root ::= object-a" in server.requests[1]["grammar"]
    assert record.payload == json.loads(GOOD)


def test_last_resort_is_unconstrained_with_strict_extraction(settings: Settings) -> None:
    echo = json.dumps({"step": 1, "run_id": "x"})  # small models echo their input first
    prose = f"Here is the input: {echo}\n```json\n{GOOD}\n```\nHope this helps."
    rejected = Status(400, "failed to parse grammar")
    with scripted(rejected, rejected, prose) as server:
        record = evaluate(settings, server)
    assert record.parse_method == "llm_http_extracted"
    assert "grammar" not in server.requests[2]
    assert record.payload == json.loads(GOOD)
    assert [a.method for a in record.attempts] == [
        "grammar_constrained",
        "json_grammar_constrained",
        "llm_http_extracted",
    ]


def test_total_failure_raises_with_every_attempt(settings: Settings) -> None:
    with scripted("{}", "{}", "{}", "no JSON at all") as server, pytest.raises(EvaluationError) as caught:
        evaluate(settings, server)
    attempts = caught.value.attempts
    assert [a["outcome"] for a in attempts] == ["invalid"] * 4
    assert attempts[-1]["method"] == "llm_http_extracted"
    assert "no JSON object" in attempts[-1]["error"]


def test_a_request_the_server_refuses_ends_the_evaluation(settings: Settings) -> None:
    refusal = Status(400, "the request exceeds the available context size")
    with scripted(refusal) as server, pytest.raises(EvaluationError, match="refused the request") as caught:
        evaluate(settings, server)
    assert [a["outcome"] for a in caught.value.attempts] == ["server_error"]


# ---------------------------------------------------------------------------------------------------------------
# Input: step detection and schema violations
# ---------------------------------------------------------------------------------------------------------------


def test_schema_invalid_output_is_rejected_before_any_server_call(settings: Settings) -> None:
    with scripted() as server, pytest.raises(SchemaViolation) as caught:
        evaluate(settings, server, "2", "invalid")
    assert "step2_bidirectional_sieve.schema.json" in str(caught.value)
    assert caught.value.details and server.starts == 0 and server.requests == []


def test_step_is_detected_from_the_output_globs(settings: Settings) -> None:
    target = settings.pipeline_path("bidirectional_survivors.json")
    target.write_bytes((EXAMPLES / "step2_good.json").read_bytes())
    assert detect_step(settings, target) == "2"
    nested = settings.pipeline_path("models/reinforcement/best_model.meta.json")
    nested.parent.mkdir(parents=True)
    nested.write_bytes((EXAMPLES / "step5_good.json").read_bytes())
    assert detect_step(settings, nested) == "5"


@pytest.mark.parametrize("step", ["1", "2", "2.5", "3", "4", "5", "6"])
def test_a_file_outside_the_globs_is_matched_to_the_one_step_whose_schema_it_fits(
    settings: Settings, step: str
) -> None:
    assert detect_step(settings, EXAMPLES / f"step{step}_good.json") == step


def test_a_file_that_fits_no_glob_and_no_schema_names_the_step_to_give(settings: Settings) -> None:
    with pytest.raises(InputError, match="matches no step's output_glob and no step's schema; name the step"):
        detect_step(settings, EXAMPLES / "step2_invalid.json")


def test_a_step_output_over_the_request_size_cap_is_judged_and_a_broken_one_is_an_input_error(
    tmp_path: Path,
) -> None:
    # limits.max_file_bytes is for requests: the pipeline decides how large its outputs are.
    settings = trust_settings(tmp_path)
    big = tmp_path / "out" / "optimal_window_config.json"
    big.parent.mkdir()
    big.write_text((EXAMPLES / "step1_good.json").read_text() + " " * (settings.watcher.limits.max_file_bytes + 1))
    (big.parent / "bidirectional_survivors.json").write_bytes((EXAMPLES / "bidirectional_survivors.json").read_bytes())
    broken = tmp_path / "broken.json"
    broken.write_text('{"step": 1,')
    with scripted() as server:
        assert Evaluator(settings, server).evaluate(big, "1").decision == "proceed"
        with pytest.raises(InputError, match="invalid JSON at line 1"):
            Evaluator(settings, server).evaluate(broken, "1")
    assert server.requests == []


def test_a_server_that_cannot_be_reached_is_server_unavailable(settings: Settings) -> None:
    with scripted() as server:
        server.base_url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
        with pytest.raises(ServerUnavailable, match="'scripted'"):
            evaluate(settings, server)


def test_cli_rejects_an_invalid_output_with_exit_2_and_starts_nothing(
    settings: Settings, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from watcher.llm import lifecycle

    monkeypatch.setattr(lifecycle, "get_lifecycle_manager", _no_manager)
    argv = ["--config-dir", str(settings.config_dir), "evaluate", str(EXAMPLES / "step4_invalid.json"), "--step", "4"]
    assert cli.main(argv) == ExitCode.INVALID_INPUT
    err = capsys.readouterr().err
    assert "step4_invalid.json: does not match schema step4_ml_meta.schema.json" in err
    assert not settings.path(settings.watcher.folders.decisions).exists()


def _no_manager(*args: object, **kwargs: object) -> None:
    raise AssertionError("the lifecycle manager was asked for a server")


def test_the_policy_holds_the_measured_confidence_and_the_record_keeps_both(settings: Settings) -> None:
    # The model writes 0.8, but gave "retry" only 30 % of the mass of the three decisions: below min_confidence.
    proceed = GOOD.replace('"retry"', '"proceed"')
    with scripted(WithProbs(proceed, {"p": 0.3, "r": 0.5, "e": 0.2, "x": 0.4})) as server:
        record = evaluate(settings, server)
    assert (record.confidence_source, record.verbalised_confidence) == ("token_probability", 0.8)
    assert record.confidence == pytest.approx(0.3) and record.verdict.model_decision == "proceed"
    assert settings.watcher.steps["1"].min_confidence > 0.3
    assert (record.decision, record.verdict.rule) == ("escalate", "min_confidence")
    assert record.timings.cached_tokens == 30

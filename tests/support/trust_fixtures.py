"""Stand-ins for the LLM server in evaluator-level tests of the checks and the policy around the model.

``FakeLlamaServer`` speaks llama-server's HTTP API (``/health``, ``/props``, ``/completion``) on a loopback port,
answers every completion with one chosen text, and records what it was sent. It is also the lease the evaluator
gets, so a test sees both the lease calls and the HTTP requests.

``NoServerLease`` is for judgements that must never need a server: ``ensure_running`` fails the evaluation, and
its URL is a port where nothing listens, so any HTTP request fails too.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import threading
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tests.support.fake_llama_server import JsonReplyHandler, apply_template
from tests.support.helpers import free_port
from watcher.config import Settings, load_settings
from watcher.core.datadirs import SOURCE_ROOT

REPO_CONFIG = SOURCE_ROOT / "config"
LABELLED = SOURCE_ROOT / "examples" / "step_outputs" / "labelled"
GEMMA_TEMPLATE = "{{ bos_token }}<start_of_turn>user\n{{ content }}<end_of_turn>\n<start_of_turn>model\n"


def answer_text(grammar: str, decision: str, confidence: float) -> str:
    """An answer to the step grammar ``grammar``, spaced as the grammar allows (``", "`` and ``": "``)."""
    answer: dict[str, Any] = {
        "reasoning": "The metrics meet their thresholds and the run completed; the next step can use it.",
        "decision": decision,
        "confidence": confidence,
    }
    if grammar == "sieve_analysis":
        answer["survivor_assessment"] = {
            "forward_survivors": 1840,
            "reverse_survivors": 96,
            "bidirectional_survivors": 37,
            "verdict": "adequate",
        }
    answer.update(warnings=[], suggested_parameters=[])
    return json.dumps(answer)


def trust_settings(tmp_path: Path, ask_model: dict[str, str] | None = None) -> Settings:
    """The shipped config, copied under ``tmp_path`` and loaded from there, with ``ask_model`` set per step."""
    config_dir = tmp_path / "config"
    shutil.copytree(REPO_CONFIG, config_dir)
    file = config_dir / "watcher.json"
    data = json.loads(file.read_text())
    for step, mode in (ask_model or {}).items():
        data["steps"][step]["ask_model"] = mode
    file.write_text(json.dumps(data, indent=2))
    return load_settings(config_dir, root=tmp_path)


class _Handler(JsonReplyHandler):
    server: _HttpServer

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the fake's requests are asserted on, not logged

    def do_GET(self) -> None:
        self.server.owner.record(self.command, self.path, None)
        if self.path == "/health":
            self.send_json(200, {"status": "ok"})
        elif self.path == "/props":
            self.send_json(200, self.server.owner.props())
        else:
            self.send_json(404, {"error": {"code": 404, "message": "File Not Found", "type": "not_found_error"}})

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))) or b"{}")
        self.server.owner.record(self.command, self.path, body)
        if self.path == "/apply-template":
            self.send_json(*apply_template(body))
        elif self.path != "/completion":
            self.send_json(404, {"error": {"code": 404, "message": "File Not Found", "type": "not_found_error"}})
        elif "grammar" in body and "json_schema" in body:
            message = 'Either "json_schema" or "grammar" can be specified, but not both'
            self.send_json(400, {"error": {"code": 400, "message": message, "type": "invalid_request_error"}})
        else:
            self.send_json(200, self.server.owner.completion(body))


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True
    owner: FakeLlamaServer


class FakeLlamaServer:
    """A loopback llama-server stand-in answering every ``/completion`` with ``content``; a ServerLease."""

    name = "fake"
    model = "gemma-3-270m-it-fake.gguf"

    def __init__(self, content: str) -> None:
        self.content = content
        self.requests: list[tuple[str, str, dict[str, Any] | None]] = []
        self.ensure_calls = 0
        self._lock = threading.Lock()
        self._http = _HttpServer(("127.0.0.1", 0), _Handler)
        self._http.owner = self
        self.base_url = f"http://127.0.0.1:{self._http.server_address[1]}"
        self._thread = threading.Thread(target=self._http.serve_forever, kwargs={"poll_interval": 0.05})
        self._thread.start()

    def ensure_running(self) -> None:
        self.ensure_calls += 1

    @contextlib.contextmanager
    def in_use(self) -> Iterator[None]:
        yield

    def close(self) -> None:
        self._http.shutdown()
        self._http.server_close()
        self._thread.join(timeout=5)

    def record(self, method: str, path: str, body: dict[str, Any] | None) -> None:
        with self._lock:
            self.requests.append((method, path, body))

    def completions(self) -> list[dict[str, Any]]:
        """The bodies of every ``POST /completion`` so far."""
        with self._lock:
            return [body for method, path, body in self.requests if path == "/completion" and body is not None]

    def props(self) -> dict[str, Any]:
        return {
            "model_path": self.model,
            "chat_template": GEMMA_TEMPLATE,
            "total_slots": 1,
            "build_info": "b0-fake",
            "is_sleeping": False,
        }

    def completion(self, body: dict[str, Any]) -> dict[str, Any]:
        return {
            "content": self.content,
            "stop": True,
            "stop_type": "eos",
            "model": self.model,
            "tokens_predicted": 48,
            "tokens_evaluated": len(str(body.get("prompt", ""))) // 4,
            "timings": {"prompt_ms": 1.5, "predicted_ms": 2.5},
        }


class NoServerLease:
    """A lease for judgements that must not need a server: any use of it fails the evaluation."""

    name = "absent"

    def __init__(self) -> None:
        self.base_url = f"http://127.0.0.1:{free_port()}"  # nothing listens: any request fails to connect
        self.ensure_calls = 0
        self.use_calls = 0

    def ensure_running(self) -> None:
        self.ensure_calls += 1
        raise AssertionError("ensure_running called: this judgement must not need the server")

    @contextlib.contextmanager
    def in_use(self) -> Iterator[None]:
        self.use_calls += 1
        raise AssertionError("in_use entered: this judgement must not need the server")
        yield

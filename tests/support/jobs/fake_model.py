"""An in-process stand-in for llama-server that answers by grammar, and can be stopped and started like one.

It speaks the protocol the client uses (``/health``, ``/props``, ``/completion`` with ``grammar``); the answer to
each completion is the next scripted one for the grammar named in the grammar's first line (``# chapter_13: ...``),
the last one repeating. ``stop()`` closes the listening socket, so a job can check that the port is silent.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator, Mapping
from http.server import ThreadingHTTPServer
from typing import Any

from tests.support.fake_llama_server import JsonReplyHandler, apply_template
from tests.support.helpers import free_port


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    model: FakeModel


class _Handler(JsonReplyHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        if self.path == "/props":
            self.send_json(200, {"model_path": "fake-gemma.gguf", "chat_template": "", "total_slots": 1})
        else:
            self.send_json(200, {"status": "ok"})

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
        if self.path == "/apply-template":
            self.send_json(*apply_template(body))
            return
        content = self.server.model.answer(str(body.get("grammar") or ""), str(body.get("prompt", "")))
        self.send_json(200, {"content": content, "stop_type": "eos", "tokens_predicted": 20, "tokens_evaluated": 100,
                    "timings": {"prompt_ms": 1.0, "predicted_ms": 2.0}, "model": "fake-gemma.gguf"})  # fmt: skip


class FakeModel:
    """Satisfies the lease the dispatcher needs (ensure_running, stop, in_use, is_healthy)."""

    def __init__(self, answers: Mapping[str, list[Mapping[str, Any]]]) -> None:
        self.name = "primary"
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.answers = {grammar: list(items) for grammar, items in answers.items()}
        self.asked: list[tuple[str, str]] = []  # (grammar, prompt)
        self.events: list[str] = []
        self._server: _Server | None = None
        self._lock = threading.Lock()

    def answer(self, grammar_text: str, prompt: str) -> str:
        name = grammar_text.split(":", 1)[0].lstrip("# ").strip() if grammar_text else "none"
        with self._lock:
            self.asked.append((name, prompt))
            queue = self.answers[name]
            item = queue.pop(0) if len(queue) > 1 else queue[0]
        return json.dumps(item)

    def ensure_running(self) -> None:
        with self._lock:
            if self._server is not None:
                return
            self.events.append("start")
            server = _Server(("127.0.0.1", self.port), _Handler)
            server.model = self
            threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
            self._server = server

    def stop(self) -> None:
        with self._lock:
            server, self._server = self._server, None
            self.events.append("stop")
        if server is not None:
            server.shutdown()
            server.server_close()

    def is_healthy(self) -> bool:
        return self._server is not None

    @contextlib.contextmanager
    def in_use(self) -> Iterator[None]:
        yield

    @contextlib.contextmanager
    def held_stopped(self) -> Iterator[None]:
        self.stop()
        yield


def decision(kind: str, confidence: float = 0.9) -> dict[str, Any]:
    """An ``agent_decision`` answer."""
    return {"reasoning": f"scripted {kind}", "decision": kind, "confidence": confidence, "warnings": [],
            "suggested_parameters": []}  # fmt: skip

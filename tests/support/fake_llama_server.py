"""A fake llama-server: same command line, same HTTP API (/health, /props, /apply-template, /completion), chosen
faults.

Run as ``python -m tests.support.fake_llama_server --port N --fake-mode M`` or through ``make_fake_binary``.
Modes:
    normal          /health 503 for --fake-load-sec, then 200
    loading         /health 503 forever
    ignore-sigterm  normal, but SIGTERM is ignored
    die-mid-request normal, but /completion kills the process half-way through its answer
    exit            exits at once with code 3 and an error on stderr
    with-child      normal, plus a child process in its process group that ignores SIGTERM
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

MODES = ("normal", "loading", "ignore-sigterm", "die-mid-request", "exit", "with-child")
CHILD_SCRIPT = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--model", "-m", default="fake.gguf")
    parser.add_argument("--ctx-size", "-c", type=int, default=4096)
    parser.add_argument("--parallel", "-np", type=int, default=1)
    parser.add_argument("--fake-mode", choices=MODES, default=os.environ.get("FAKE_LLAMA_MODE", "normal"))
    parser.add_argument("--fake-load-sec", type=float, default=float(os.environ.get("FAKE_LLAMA_LOAD_SEC", "0.3")))
    args, _unknown = parser.parse_known_args(argv)  # the real server's other flags are accepted and ignored
    return args


# llama-server's fallback chat template for a model without one (what its /props reports then).
FALLBACK_TEMPLATE = (
    "{%- for message in messages -%}\n  {{- '<|im_start|>' + message.role + '\\n' + message.content + "
    "'<|im_end|>\\n' -}}\n{%- endfor -%}\n{%- if add_generation_prompt -%}\n  {{- '<|im_start|>assistant\\n' -}}"
    "\n{%- endif -%}"
)


def apply_template(body: Mapping[str, Any]) -> tuple[int, dict[str, Any]]:
    """``POST /apply-template`` as llama-server answers it for a model on its ChatML fallback: ``{"prompt": ...}``
    from ``{"messages": [...]}``; a body without messages is a 400 (the server's invalid_request_error)."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return 400, {"error": {"code": 400, "message": "'messages' is required", "type": "invalid_request_error"}}
    turns = "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages)
    return 200, {"prompt": turns + "<|im_start|>assistant\n"}


class JsonReplyHandler(BaseHTTPRequestHandler):
    """What every fake llama-server answers with: a JSON body and its length, as the real one sends."""

    def send_json(self, status: int, payload: Mapping[str, Any]) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class Handler(JsonReplyHandler):
    server: FakeServer

    def log_message(self, format: str, *args: Any) -> None:
        if self.path != "/health":  # polled every few ms: it would push everything else out of the log tail
            sys.stderr.write(f"fake: {self.command} {self.path}\n")

    def do_GET(self) -> None:
        if not self.server.ready():
            self.send_json(503, {"error": {"message": "Loading model", "code": 503}})
        elif self.path == "/health":
            self.send_json(200, {"status": "ok"})
        elif self.path == "/props":
            args = self.server.args
            self.send_json(
                200,
                {
                    "model_path": args.model,
                    "chat_template": FALLBACK_TEMPLATE,
                    "is_sleeping": False,
                    "total_slots": args.parallel,
                    "default_generation_settings": {"n_ctx": args.ctx_size // args.parallel},
                },
            )
        else:
            self.send_json(404, {"error": {"message": "not found", "code": 404}})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        raw = self.rfile.read(length)
        if not self.server.ready():
            self.send_json(503, {"error": {"message": "Loading model", "code": 503}})
            return
        if self.path == "/apply-template":
            self.send_json(*apply_template(json.loads(raw or b"{}")))
            return
        if self.server.args.fake_mode == "die-mid-request":
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.write(b'{"content": "half an ans')
            self.wfile.flush()
            os._exit(9)
        self.send_json(200, {"content": '{"verdict": "yes"}', "stop": True})


class FakeServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, args: argparse.Namespace) -> None:
        super().__init__((args.host, args.port), Handler)
        self.args = args
        self.loaded_at = time.monotonic() + args.fake_load_sec

    def ready(self) -> bool:
        return self.args.fake_mode != "loading" and time.monotonic() >= self.loaded_at


def main(argv: list[str] | None = None) -> None:
    args = parse(sys.argv[1:] if argv is None else argv)
    if args.fake_mode == "exit":
        sys.stderr.write(f"error: failed to load model '{args.model}'\n")
        sys.exit(3)
    if args.fake_mode == "ignore-sigterm":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    else:
        signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    if args.fake_mode == "with-child":
        child = subprocess.Popen([sys.executable, "-c", CHILD_SCRIPT])
        sys.stderr.write(f"fake child pid {child.pid}\n")
    server = FakeServer(args)
    sys.stderr.write(f"fake llama-server listening on {args.host}:{args.port} mode {args.fake_mode}\n")
    sys.stderr.flush()
    server.serve_forever(poll_interval=0.05)
    server.server_close()


def make_fake_binary(folder: Path, mode: str = "normal", load_sec: float = 0.3) -> Path:
    """An executable named llama-server that runs this fake in ``mode`` (its path is what the manager sees)."""
    folder.mkdir(parents=True, exist_ok=True)
    binary = folder / "llama-server"
    root = Path(__file__).resolve().parents[2]
    binary.write_text(
        f"#!{sys.executable}\n"
        "import sys\n"
        f"sys.path.insert(0, {str(root)!r})\n"
        "from tests.support.fake_llama_server import main\n"
        f"main(sys.argv[1:] + ['--fake-mode', {mode!r}, '--fake-load-sec', {str(load_sec)!r}])\n"
    )
    binary.chmod(0o755)
    return binary


if __name__ == "__main__":
    main()

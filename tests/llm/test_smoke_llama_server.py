"""The provisioned llama-server and model really work: health, a grammar-constrained completion, a clean stop."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import httpx
import psutil
import pytest

from tests.support.real_server import DirectServer

GRAMMAR = r"""
root   ::= "{" ws "\"verdict\":" ws verdict "," ws "\"score\":" ws digit "}"
verdict ::= "\"yes\"" | "\"no\""
digit  ::= [0-9]
ws     ::= [ ]?
"""


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


@pytest.mark.real_server
@pytest.mark.timeout(180)
def test_provisioned_server_answers_with_grammar_and_stops_cleanly(
    llama_binary: Path, model_path: Path, tmp_path: Path
) -> None:
    server = DirectServer(llama_binary, model_path, tmp_path / "server.log", ctx_size=32768, parallel=1)
    try:
        props = httpx.get(f"{server.base_url}/props", timeout=5).json()
        assert props["default_generation_settings"]["n_ctx"] == 32768
        reply = httpx.post(
            f"{server.base_url}/completion",
            json={
                "prompt": "Is the sky blue? Answer as JSON.",
                "grammar": GRAMMAR,
                "n_predict": 32,
                "temperature": 0,
                "seed": 1,
            },
            timeout=60,
        )
        reply.raise_for_status()
        answer = json.loads(reply.json()["content"])
        assert answer["verdict"] in {"yes", "no"}
        assert 0 <= answer["score"] <= 9
    finally:
        server.close()
    assert not psutil.pid_exists(server.process.pid)
    assert _port_free(server.port)

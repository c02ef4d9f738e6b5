"""``watcher evaluate FILE [--step N] [--out PATH] [--server NAME]``: judge one step output and print the decision.

Exit codes: 0 decided, 2 invalid input (no model call), 4 server unavailable, 5 no validated decision.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from watcher.config import Settings, load_settings
from watcher.exitcodes import ExitCode


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("evaluate", help="judge one pipeline step output file and print the decision")
    parser.add_argument("file", type=Path, help="the step output file (JSON)")
    parser.add_argument("--step", default=None, help="step number (default: from the config's output globs)")
    parser.add_argument(
        "--out", type=Path, default=None, help="decision file (default: <decisions folder>/<name>.<sha>.json)"
    )
    parser.add_argument("--server", default=None, help="server to use (default: evaluation.server)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from watcher.atomic import atomic_write_json
    from watcher.evaluate import Evaluator, detect_step, load_step_output

    settings = load_settings(args.config_dir)
    file = args.file.resolve()
    step = args.step or detect_step(settings, file)
    load_step_output(settings, file, step)  # invalid input: exit 2 before any server is started
    with _lease(settings, args.server or settings.watcher.evaluation.server) as lease:
        record = Evaluator(settings, lease).evaluate(file, step)
    payload = record.model_dump(mode="json")
    out = args.out or settings.path(settings.watcher.folders.decisions) / default_name(file, record.source_sha256)
    atomic_write_json(out, payload)
    sys.stdout.write(json.dumps(payload, indent=2, ensure_ascii=False) + "\n")
    sys.stderr.write(f"watcher evaluate: {record.decision} ({record.parse_method}); written to {out}\n")
    return ExitCode.OK


def default_name(file: Path, sha256: str) -> str:
    """One decision per content: the same file judged again replaces its decision, a changed one gets a new one."""
    return f"{file.stem}.{sha256[:12]}.json"


class _LocalServer:
    """A llama-server for the length of one command, stopped on exit."""

    def __init__(self, settings: Settings, name: str) -> None:
        from watcher.llm.client import LlamaClient

        self.name = name
        self._settings = settings
        self._config = settings.server(name)
        self.base_url = self._config.base_url
        self._client = LlamaClient(self.base_url, name)
        self._process: subprocess.Popen[bytes] | None = None

    def ensure_running(self) -> None:
        from watcher.errors import ServerStartTimeout
        from watcher.llm.launch import build_command, build_env
        from watcher.provision import resolve_binary, resolve_model

        if self._process is None and not self._client.health():
            root, config = self._settings.root, self._config
            binary = resolve_binary(config, root, self.name)
            command = build_command(config, binary, resolve_model(config, root, self.name))
            self._process = subprocess.Popen(
                command, env=build_env(config), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
        deadline = time.monotonic() + self._config.health_check_deadline_sec
        while not self._client.health():
            if time.monotonic() > deadline:
                raise ServerStartTimeout(self.name, "not healthy before the deadline")
            time.sleep(self._config.health_poll_interval_sec)

    @contextlib.contextmanager
    def in_use(self) -> Iterator[None]:
        yield

    def close(self) -> None:
        self._client.close()
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout=self._config.stop_timeout_sec)


@contextlib.contextmanager
def _lease(settings: Settings, name: str) -> Iterator[_LocalServer]:
    server = _LocalServer(settings, name)
    try:
        yield server
    finally:
        server.close()

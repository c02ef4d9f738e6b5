"""``watcher doctor``: every precondition of a working daemon, checked at once, each a row of a table; exit
non-zero listing every problem."""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from watcher.config import ServerConfig, Settings, load_settings
from watcher.core.datadirs import grammar_dir
from watcher.errors import ConfigError, WatcherError
from watcher.exitcodes import ExitCode
from watcher.llm.provision import resolve_binary, resolve_model


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("doctor", help="check config, llama-server, model, grammars, folders, port, GPUs")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        settings = load_settings(args.config_dir)
    except ConfigError as error:
        findings = [Finding("config", False, str(error))]
        code = ExitCode.CONFIG_ERROR
    else:
        findings = diagnose(settings)
        code = ExitCode.OK if all(f.ok for f in findings) else ExitCode.FAILURE
    sys.stdout.write(render_table(findings))
    problems = [f for f in findings if not f.ok]
    for problem in problems:
        sys.stderr.write(f"watcher doctor: {problem.check}: {problem.detail}\n")
    if problems:
        sys.stderr.write(f"watcher doctor: {len(problems)} problem(s)\n")
    return code


def render_table(findings: list[Any]) -> str:
    width = max(len(f.check) for f in findings)
    rows = [f"{'CHECK'.ljust(width)}  OK    DETAIL"]
    for f in findings:
        detail = f.detail.splitlines()[0] if f.detail else ""
        rows.append(f"{f.check.ljust(width)}  {'ok  ' if f.ok else 'FAIL'}  {detail}")
    return "\n".join(rows) + "\n"


@dataclass(frozen=True)
class Finding:
    check: str
    ok: bool
    detail: str


def diagnose(settings: Settings) -> list[Finding]:
    findings = [Finding("config", True, f"{settings.config_dir} (root {settings.root})")]
    for name, server in settings.llm.servers.items():
        findings += list(_server_findings(settings, name, server))
    findings.append(_grammars())
    findings += [_writable(label, settings.path(folder)) for label, folder in settings.watcher.folders]
    findings.append(_gpus())
    if settings.watcher.notify.argv is not None:
        findings.append(_guard("notify command", lambda: _notify(settings)))
    return findings


def _notify(settings: Settings) -> str:
    """The notify command must be there to run (it is not run: that would page someone)."""
    argv = settings.watcher.notify.argv or ()
    # A bare name is looked up on PATH; a path is relative to the root, where the daemon runs the command.
    program = shutil.which(argv[0]) if "/" not in argv[0] else shutil.which(str(settings.path(argv[0])))
    if program is None:
        raise OSError(f"{argv[0]!r} not found (notify.argv)")
    return program


def _server_findings(settings: Settings, name: str, server: ServerConfig) -> Iterator[Finding]:
    yield _guard(f"{name}: binary", lambda: _binary(settings, name, server))
    yield _guard(f"{name}: model", lambda: _model(settings, name, server))
    yield _guard(f"{name}: port", lambda: _port(settings, name, server))


def _guard(check: str, probe: Callable[[], str]) -> Finding:
    try:
        return Finding(check, True, probe())
    except (WatcherError, OSError, subprocess.SubprocessError) as exc:
        return Finding(check, False, str(exc))


def _binary(settings: Settings, name: str, server: ServerConfig) -> str:
    binary = resolve_binary(server, settings.root, name)
    result = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=20, check=False)
    version = next((line for line in (result.stderr + result.stdout).splitlines() if "version" in line), "")
    if result.returncode != 0 or not version:
        raise OSError(f"{binary} --version failed (exit {result.returncode})")
    return f"{binary} ({version.strip()})"


def _model(settings: Settings, name: str, server: ServerConfig) -> str:
    from watcher.llm.gguf import read_model_facts

    path = resolve_model(server, settings.root, name)
    facts = read_model_facts(path)
    size_gb = path.stat().st_size / 1e9
    return (
        f"{path.name}: {facts.architecture}, {facts.n_layers} layers, trained ctx {facts.n_ctx_train}, {size_gb:.2f} GB"
    )


def _port(settings: Settings, name: str, server: ServerConfig) -> str:
    with socket.socket(socket.AF_INET6 if ":" in server.host else socket.AF_INET, socket.SOCK_STREAM) as sock:
        in_use = sock.connect_ex((server.host, server.port)) == 0
    if not in_use:
        return f"{server.host}:{server.port} free"
    from watcher.llm.lifecycle import get_lifecycle_manager

    # Our own server holding its port is fine; anything else would make every start fail.
    status = get_lifecycle_manager(settings, name).status()
    if status.pid is not None:
        return f"{server.host}:{server.port} held by this config's llama-server (pid {status.pid}, {status.state})"
    raise OSError(f"{server.host}:{server.port} is in use by another process; choose another port")


def _grammars() -> Finding:
    from watcher.grammars.loader import GRAMMAR_FILES

    folder = grammar_dir()
    missing = [name for name in GRAMMAR_FILES.values() if not (folder / name).is_file()]
    if missing:
        return Finding("grammars", False, f"{folder}: missing {', '.join(missing)}")
    detail = f"{folder} ({len(GRAMMAR_FILES)} grammars; `watcher grammars check` compiles them)"
    return Finding("grammars", True, detail)


def _writable(label: str, folder: Path) -> Finding:
    check = f"folder {label}"
    existing = next((p for p in (folder, *folder.parents) if p.exists()), None)
    if existing is None or not os.access(existing, os.W_OK | os.X_OK):
        return Finding(check, False, f"{folder} is not writable")
    state = "exists" if folder.is_dir() else "will be created"
    return Finding(check, True, f"{folder} ({state})")


def _gpus() -> Finding:
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return Finding("gpus", True, "no nvidia-smi: CPU only")
    query = ["--query-gpu=index,name,memory.used,memory.total", "--format=csv,noheader"]
    try:
        result = subprocess.run([smi, *query], capture_output=True, text=True, timeout=20, check=True)
    except (OSError, subprocess.SubprocessError) as exc:
        return Finding("gpus", False, f"nvidia-smi failed: {exc}")
    lines = [line.strip() for line in result.stdout.splitlines() if line.strip()]
    return Finding("gpus", True, "; ".join(lines) or "nvidia-smi lists no GPU")

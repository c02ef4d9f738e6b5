"""``watcher doctor``: a table of every check; exit non-zero listing every problem."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from watcher.config import load_settings
from watcher.errors import ConfigError
from watcher.exitcodes import ExitCode


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("doctor", help="check config, llama-server, model, grammars, folders, port, GPUs")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from watcher.doctor import Finding, diagnose

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

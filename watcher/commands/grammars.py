"""``watcher grammars check``: every grammar compiles and is lint-clean, every step maps to an existing grammar."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from watcher.config import Settings, load_settings
from watcher.exitcodes import ExitCode


def register(subparsers: Any) -> None:
    grammars = subparsers.add_parser("grammars", help="the GBNF grammars in agent_grammars/")
    actions = grammars.add_subparsers(dest="grammars_command", required=True, metavar="ACTION")
    check = actions.add_parser(
        "check",
        help="compile (llguidance, else a running llama-server), lint, and map every step; a table of results",
    )
    check.add_argument("--server", default=None, help="server asked to compile when llguidance is absent")
    check.set_defaults(func=run_check)


def run_check(args: argparse.Namespace) -> int:
    from watcher.judging.grammar_checks import check_all

    settings = load_settings(args.config_dir)
    compile_with, how = compiler(settings, args.server or settings.watcher.evaluation.server)
    rows = check_all(settings, compile_with)
    width = max(len(row.subject) for row in rows)
    lines = [f"compiled with: {how}", f"{'SUBJECT'.ljust(width)}  RESULT       DETAIL"]
    for row in rows:
        result = {True: "ok", False: "FAIL", None: "not checked"}[row.ok]
        lines.append(f"{row.subject.ljust(width)}  {result.ljust(11)}  {row.detail}")
    sys.stdout.write("\n".join(lines) + "\n")
    failed = [row for row in rows if row.ok is False]
    for row in failed:
        sys.stderr.write(f"watcher grammars check: {row.subject}: {row.detail}\n")
    return ExitCode.FAILURE if failed else ExitCode.OK


def compiler(settings: Settings, server: str) -> tuple[Callable[[str], None] | None, str]:
    """llguidance when installed; else the named server if it is running (nothing is started for a check)."""
    try:
        import llguidance  # noqa: F401
    except ImportError:
        pass
    else:
        from watcher.grammars.loader import llguidance_compile

        return llguidance_compile, "llguidance"
    from watcher.llm.client import LlamaClient

    config = settings.server(server)
    client = LlamaClient(config.base_url, server, timeout=60)
    if client.health():
        return client.grammar_compiles, f"llm server {server!r} at {config.base_url}"
    client.close()
    return None, f"nothing: llguidance is not installed and llm server {server!r} is not running"

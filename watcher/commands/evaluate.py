"""``watcher evaluate FILE [--step N] [--out PATH] [--server NAME]``: judge one step output and print the decision.

Exit codes: 0 decided, 2 invalid input (no model call), 4 server unavailable, 5 no validated decision.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from watcher.config import load_settings
from watcher.exitcodes import ExitCode


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("evaluate", help="judge one pipeline step output file and print the decision")
    parser.add_argument("file", type=Path, help="the step output file (JSON)")
    parser.add_argument("--step", default=None, help="step number (default: by output_glob, else by schema)")
    parser.add_argument(
        "--out", type=Path, default=None, help="decision file (default: <decisions folder>/<name>.<sha>.json)"
    )
    parser.add_argument("--server", default=None, help="server to use (default: evaluation.server)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from watcher.core.atomic import atomic_write_json
    from watcher.judging.evaluator import Evaluator
    from watcher.judging.step_files import detect_step, load_step_output
    from watcher.llm.lifecycle import get_lifecycle_manager

    settings = load_settings(args.config_dir)
    file = args.file.resolve()
    step = args.step or detect_step(settings, file)
    load_step_output(settings, file, step)  # invalid input: exit 2 before any server is started
    lease = get_lifecycle_manager(settings, args.server or settings.watcher.evaluation.server)
    was_running = lease.is_healthy()
    try:
        record = Evaluator(settings, lease).evaluate(file, step)
    finally:
        if not was_running:
            lease.stop()  # a server this command started lives no longer than the command
    payload = record.model_dump(mode="json")
    out = args.out or settings.path(settings.watcher.folders.decisions) / default_name(file, record.source_sha256)
    atomic_write_json(out, payload)
    sys.stdout.write(json.dumps(payload, indent=2, ensure_ascii=False) + "\n")
    sys.stderr.write(f"watcher evaluate: {record.decision} ({record.parse_method}); written to {out}\n")
    return ExitCode.OK


def default_name(file: Path, sha256: str) -> str:
    """One decision per content: the same file judged again replaces its decision, a changed one gets a new one."""
    return f"{file.stem}.{sha256[:12]}.json"

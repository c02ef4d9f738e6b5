"""``watcher check FILE [FILE ...] [--step N] [--json]``: the configured checks on step outputs, without a model.

For each file: its schema, every check of its step, and what the step's ``ask_model`` mode would do with it
(settle ``proceed``, settle the hard-failure decision, or ask the model and why). No server is started, so this is
the quick way to try thresholds against real outputs before the daemon judges them.

Exit codes: 0 no file failed a hard check, 1 a file failed a hard check, 2 a file is not a valid step output
(every file is still reported).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from watcher.checks import CheckReport, run_checks
from watcher.config import Settings, load_settings
from watcher.errors import InputError
from watcher.exitcodes import ExitCode
from watcher.judgement import Plan, plan


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("check", help="run the configured checks on step output files, no model")
    parser.add_argument("files", type=Path, nargs="+", metavar="FILE", help="step output files (JSON)")
    parser.add_argument("--step", default=None, help="step number (default: by output_glob, else by schema)")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    settings = load_settings(args.config_dir)
    results = [check_file(settings, file, args.step) for file in args.files]
    if args.json:
        sys.stdout.write(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    else:
        sys.stdout.write("".join(render(result) for result in results))
    return exit_code(results)


def check_file(settings: Settings, file: Path, step: str | None) -> dict[str, Any]:
    """One file's checks and plan, or the reason it could not be checked."""
    from watcher.evaluate import detect_step, load_step_output

    try:
        chosen = step or detect_step(settings, file)
        output = load_step_output(settings, file, chosen)
    except InputError as error:
        return {"file": str(file), "error": str(error)}
    report = run_checks(settings.watcher.checks.get(chosen, ()), output.data)
    planned = plan(output.config, report)
    return {
        "file": str(file),
        "step": chosen,
        "step_name": output.config.name,
        "ask_model": output.config.ask_model,
        "outcome": outcome(planned),
        "rule": planned.rule,
        "checks": report.model_dump(mode="json"),
    }


def outcome(planned: Plan) -> str:
    return "ask the model" if planned.ask_model else f"{planned.decision} without the model"


def render(result: dict[str, Any]) -> str:
    if "error" in result:
        return f"{result['error']}\n"
    head = (
        f"{result['file']}: step {result['step']} ({result['step_name']}), ask_model {result['ask_model']}: "
        f"{result['outcome']} ({result['rule']})\n"
    )
    report = CheckReport.model_validate({"results": result["checks"]["results"]})
    return head + "".join(f"  {line}\n" for line in report.lines() or ["no checks configured for this step"])


def exit_code(results: list[dict[str, Any]]) -> int:
    if any("error" in result for result in results):
        return ExitCode.INVALID_INPUT
    if any(result["checks"]["hard_failed"] for result in results):
        return ExitCode.FAILURE
    return ExitCode.OK

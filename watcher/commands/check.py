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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from watcher.config import Settings, StepConfig, load_settings
from watcher.errors import InputError
from watcher.exitcodes import ExitCode
from watcher.judging.checks import CheckReport, run_checks
from watcher.judging.verdicts import Plan, plan


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
        sys.stdout.write(json.dumps([r.as_json() for r in results], indent=2, ensure_ascii=False) + "\n")
    else:
        sys.stdout.write("".join(r.render() for r in results))
    return exit_code(results)


@dataclass(frozen=True)
class Unreadable:
    """A file that could not be checked, and why."""

    file: Path
    error: str

    def as_json(self) -> dict[str, Any]:
        return {"file": str(self.file), "error": self.error}

    def render(self) -> str:
        return f"{self.error}\n"


@dataclass(frozen=True)
class Checked:
    """One file's checks and what its step's ``ask_model`` would do with them."""

    file: Path
    step: str
    config: StepConfig
    report: CheckReport
    planned: Plan

    @property
    def outcome(self) -> str:
        return "ask the model" if self.planned.ask_model else f"{self.planned.decision} without the model"

    def as_json(self) -> dict[str, Any]:
        return {
            "file": str(self.file),
            "step": self.step,
            "step_name": self.config.name,
            "ask_model": self.config.ask_model,
            "outcome": self.outcome,
            "rule": self.planned.rule,
            "checks": self.report.model_dump(mode="json"),
        }

    def render(self) -> str:
        head = (
            f"{self.file}: step {self.step} ({self.config.name}), ask_model {self.config.ask_model}: "
            f"{self.outcome} ({self.planned.rule})\n"
        )
        return head + "".join(f"  {line}\n" for line in self.report.lines() or ["no checks configured for this step"])


def check_file(settings: Settings, file: Path, step: str | None) -> Checked | Unreadable:
    from watcher.judging.step_files import Companions, detect_step, load_step_output

    try:
        chosen = step or detect_step(settings, file)
        output = load_step_output(settings, file, chosen)
    except InputError as error:
        return Unreadable(file, str(error))
    report = run_checks(settings.watcher.checks.get(chosen, ()), output.data, Companions(settings, file))
    return Checked(file, chosen, output.config, report, plan(output.config, report))


def exit_code(results: list[Checked | Unreadable]) -> int:
    if any(isinstance(result, Unreadable) for result in results):
        return ExitCode.INVALID_INPUT
    if any(isinstance(result, Checked) and result.report.hard_failed for result in results):
        return ExitCode.FAILURE
    return ExitCode.OK

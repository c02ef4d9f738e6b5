"""``watcher submit FILE [--wait]``: validate a request, put it into the spool atomically, print its id."""

from __future__ import annotations

import argparse
import glob
import json
import sys
import threading
import time
from pathlib import Path
from typing import Any

from handlers import registry
from watcher.config import load_settings
from watcher.core.atomic import atomic_write_bytes
from watcher.errors import InputError
from watcher.exitcodes import ExitCode
from watcher.requests.validate import parse_request
from watcher.spool.folders import ERROR_SUFFIX, SpoolPaths

POLL_SEC = 0.05


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("submit", help="validate a request file and drop it into the spool")
    parser.add_argument("file", type=Path, help="request JSON (see examples/requests/)")
    parser.add_argument("--wait", action="store_true", help="wait for the decision (or rejection) and print it")
    parser.add_argument(
        "--timeout",
        type=float,
        default=600.0,
        metavar="SEC",
        help="with --wait: give up after this many seconds (default 600)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    settings = load_settings(args.config_dir)
    paths = SpoolPaths.from_settings(settings)
    data = read_input(args.file, settings.watcher.limits.max_file_bytes)
    request = parse_request(data, args.file, settings, registry())
    target = spool_name(paths.requests, request.id)
    # The temp file is hidden and the rename is atomic: the daemon never sees a partial request.
    atomic_write_bytes(target, data)
    sys.stdout.write(f"{request.id}\n")
    sys.stdout.flush()
    if (paths.decisions / f"{request.id}.json").exists():
        sys.stderr.write(f"watcher submit: {request.id} is already decided; this copy is archived as a duplicate\n")
    if not args.wait:
        return ExitCode.OK
    return wait_for(paths, request.id, target.name, args.timeout)


def read_input(file: Path, max_bytes: int) -> bytes:
    try:
        size = file.stat().st_size
        if size > max_bytes:
            raise InputError(file, f"file is {size} bytes, over limits.max_file_bytes ({max_bytes})")
        return file.read_bytes()
    except OSError as exc:
        raise InputError(file, f"cannot read: {exc.strerror}") from exc


def spool_name(folder: Path, request_id: str) -> Path:
    target = folder / f"{request_id}.json"
    return target if not target.exists() else folder / f"{request_id}.{time.time_ns()}.json"


def wait_for(paths: SpoolPaths, request_id: str, name: str, timeout: float) -> int:
    """Poll for the decision or the rejection of this submission until ``timeout``; print what came."""
    decision = paths.decisions / f"{request_id}.json"
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while time.monotonic() < deadline:
        if decision.exists():
            sys.stdout.write(decision.read_text(encoding="utf-8"))
            return ExitCode.OK
        rejection = find_rejection(paths.rejected, name)
        if rejection is not None:
            sys.stdout.write(json.dumps(rejection, indent=2) + "\n")
            sys.stderr.write(f"watcher submit: {request_id} rejected: {rejection.get('rule')}\n")
            return ExitCode.INVALID_INPUT
        pause.wait(POLL_SEC)
    sys.stderr.write(
        f"watcher submit: no decision for {request_id} within {timeout:g}s; is the daemon running? (watcher status)\n"
    )
    return ExitCode.FAILURE


def find_rejection(folder: Path, name: str) -> dict[str, Any] | None:
    stem = name.removesuffix(".json")
    for candidate in glob.glob(f"{glob.escape(str(folder / stem))}*{ERROR_SUFFIX}"):
        try:
            record = json.loads(Path(candidate).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(record, dict) and record.get("file") == name:
            return record
    return None

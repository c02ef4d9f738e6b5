"""``watcher advise --diagnostics FILE [--submit]``: the Chapter 13 advisor's side.

The local model, constrained by ``chapter_13.gbnf`` (or, with ``--format pipeline``, ``chapter_13_proposal.gbnf``:
the pipeline advisor's own proposal shape), turns a diagnostics file into proposals; they are printed as
a ``chapter_13`` request, and with ``--submit`` written into the spool atomically for the daemon to check against
the policy and dispatch. The request id is derived from its content unless ``--id`` is given, so the same advice
on the same diagnostics is decided once however often it is submitted.

Exit codes: 0 advice printed (and submitted), 2 unreadable diagnostics, 4 server unavailable, 5 no valid advice.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

from watcher.exitcodes import ExitCode


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "advise", help="turn a diagnostics file into Chapter 13 proposals (a chapter_13 request)"
    )
    parser.add_argument("--diagnostics", type=Path, required=True, metavar="FILE", help="diagnostics JSON")
    parser.add_argument("--submit", action="store_true", help="write the request into the spool (atomically)")
    parser.add_argument("--id", default=None, help="request id (default: chapter13-<sha256 of the request>)")
    parser.add_argument(
        "--format",
        choices=("watcher", "pipeline"),
        default="watcher",
        help="shape of the advice: watcher (actions) or pipeline (the pipeline advisor's proposal shape)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from handlers import registry
    from watcher.autonomy.advisor import advise
    from watcher.autonomy.orchestrator import Autonomy
    from watcher.commands.submit import read_input, spool_name
    from watcher.config import load_settings
    from watcher.core.atomic import atomic_write_bytes
    from watcher.core.jsondoc import decode_json
    from watcher.requests.validate import parse_request
    from watcher.spool.folders import SpoolPaths

    settings = load_settings(args.config_dir)
    file = args.diagnostics.resolve()
    data = read_input(file, settings.watcher.limits.max_file_bytes)
    diagnostics = decode_json(data, file)
    autonomy = Autonomy.create(settings)
    was_running = autonomy.server.is_healthy()
    try:
        values = autonomy.state.values(autonomy.state.snapshot())
        grammar = "chapter_13_proposal" if args.format == "pipeline" else "chapter_13"
        advice, how = advise(settings, autonomy.server, autonomy.policy, diagnostics, values, grammar=grammar)
    finally:
        if not was_running:
            autonomy.server.stop()  # leave the server as it was found: a running daemon keeps its own
    payload = build_request(advice.model_dump(mode="json"), file, hashlib.sha256(data).hexdigest(), args.id)
    body = (json.dumps(payload, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
    request = parse_request(
        body, file, settings, registry()
    )  # the checks the daemon applies, before anything is written
    sys.stdout.write(body.decode("utf-8"))
    sys.stderr.write(f"watcher advise: {describe(advice)}, {how['parse_method']}\n")
    if args.submit:
        target = atomic_write_bytes(spool_name(SpoolPaths.from_settings(settings).requests, request.id), body)
        sys.stderr.write(f"watcher advise: submitted {request.id} as {target}\n")
    return ExitCode.OK


def describe(advice: Any) -> str:
    if hasattr(advice, "actions"):
        return f"{len(advice.actions)} action(s)"
    return f"{advice.recommended_action}, {len(advice.parameter_proposals)} parameter proposal(s)"


def build_request(advice: dict[str, Any], diagnostics: Path, sha256: str, request_id: str | None) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "type": "chapter_13",
        "source": "watcher advise",
        "diagnostics_file": str(diagnostics),
        "diagnostics_sha256": sha256,
        "advice": advice,
    }
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True).encode("utf-8")).hexdigest()[:16]
    return {"type": "chapter_13", "id": request_id or f"chapter13-{digest}", **payload}

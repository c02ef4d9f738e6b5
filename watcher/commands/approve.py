"""``watcher approve ID [--note TEXT]`` and ``watcher deny ID --reason TEXT``: a person decides an escalation.

Approve records who and when, then drops an ``approve_escalation`` request into the spool: the daemon runs what
the escalation held back, through the same dispatch and the same hard bounds. Deny records who, when and why; for
the pipeline's approval file it also marks the file ``rejected``. Nothing runs on a denial.

Exit codes: 0 recorded, 2 no such escalation, already decided, or nothing that could be approved.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from watcher.exitcodes import ExitCode


def register(subparsers: Any) -> None:
    approve = subparsers.add_parser("approve", help="approve an escalation: the daemon runs what it held back")
    approve.add_argument("id", help="escalation id (see `watcher escalations`)")
    approve.add_argument("--note", default=None, help="a note kept with the approval")
    approve.set_defaults(func=run_approve)
    deny = subparsers.add_parser("deny", help="deny an escalation: nothing runs")
    deny.add_argument("id", help="escalation id (see `watcher escalations`)")
    deny.add_argument("--reason", required=True, help="why (kept with the denial)")
    deny.set_defaults(func=run_deny)


def run_approve(args: argparse.Namespace) -> int:
    from handlers import registry
    from watcher.autonomy.resolutions import find, resolve
    from watcher.commands.submit import spool_name
    from watcher.config import load_settings
    from watcher.core.atomic import atomic_write_bytes
    from watcher.errors import InputError
    from watcher.requests.validate import validate_request
    from watcher.spool.folders import SpoolPaths

    settings = load_settings(args.config_dir)
    escalation = find(settings, args.id)
    if "resubmit" not in escalation.record:
        raise InputError(escalation.file, f"escalation {args.id!r} holds no request that could run")
    request_id = f"{args.id}.approved"
    body: dict[str, Any] = {"type": "approve_escalation", "id": request_id, "escalation": args.id,
                            "decided_by": "-", "decided_at": "-", "note": args.note}  # fmt: skip
    validate_request(body, b"", escalation.file, settings, registry())  # the daemon's checks, before anything
    resolution = resolve(settings, escalation, "approved", args.note)
    body |= {"decided_by": resolution["decided_by"], "decided_at": resolution["decided_at"]}
    data = (json.dumps(body, indent=2) + "\n").encode("utf-8")
    target = atomic_write_bytes(spool_name(SpoolPaths.from_settings(settings).requests, request_id), data)
    sys.stdout.write(f"{request_id}\n")
    sys.stderr.write(f"watcher approve: {args.id} approved by {resolution['decided_by']}; queued as {target}\n")
    return ExitCode.OK


def run_deny(args: argparse.Namespace) -> int:
    from watcher.autonomy.resolutions import find, reject_approval_file, resolve
    from watcher.config import load_settings

    settings = load_settings(args.config_dir)
    escalation = find(settings, args.id)
    resolution = resolve(settings, escalation, "denied", args.reason)
    marked = reject_approval_file(settings, escalation, resolution)
    sys.stderr.write(f"watcher deny: {args.id} denied by {resolution['decided_by']}"
                     + ("; approval file marked rejected\n" if marked else "\n"))  # fmt: skip
    return ExitCode.OK

"""What waits for a person, and what a person decided: escalation files and their resolutions.

An escalation is ``<folders.escalations>/<id>.json`` (written by ``state.write_escalation``); a person's decision
on it is ``<folders.escalations>/resolved/<id>.json``, created once (a second ``approve`` or ``deny`` of the same
escalation finds it and changes nothing). An approval becomes an ``approve_escalation`` request in the spool, so
the daemon runs it like any request; a denial of the pipeline's approval file marks that file ``rejected``.
"""

from __future__ import annotations

import getpass
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from watcher.autonomy import approval_file
from watcher.config import Settings
from watcher.core.atomic import atomic_write_bytes, fsync_dir
from watcher.core.clock import now_iso
from watcher.core.ids import safe_name
from watcher.errors import InputError

RESOLVED = "resolved"


@dataclass(frozen=True)
class Escalation:
    id: str
    file: Path
    record: dict[str, Any]

    @property
    def summary(self) -> dict[str, Any]:
        """Id, why, since when, what would run."""
        get = self.record.get
        return {"id": self.id, "since": get("escalated_at"), "request_type": get("request_type"),
                "reasons": get("reasons", []), "executed": get("executed"), "would_run": get("would_run", []),
                "can_approve": "resubmit" in self.record}  # fmt: skip


def folder(settings: Settings) -> Path:
    return settings.path(settings.watcher.folders.escalations)


def pending(settings: Settings) -> list[Escalation]:
    """Escalations no person has decided yet, oldest first."""
    base = folder(settings)
    found = []
    for file in sorted(base.glob("*.json")) if base.is_dir() else []:
        if (base / RESOLVED / file.name).exists():
            continue
        record = _read(file)
        if record is not None:
            found.append(Escalation(str(record.get("request_id") or file.stem), file, record))
    return sorted(found, key=lambda e: str(e.record.get("escalated_at") or ""))


def find(settings: Settings, escalation_id: str) -> Escalation:
    file = folder(settings) / f"{safe_name(escalation_id)}.json"
    record = _read(file)
    if record is None:
        raise InputError(file, f"no escalation {escalation_id!r} (see `watcher escalations`)")
    resolved = _read(folder(settings) / RESOLVED / file.name)
    if resolved is not None:
        raise InputError(file, f"escalation {escalation_id!r} was already {resolved.get('decision')} by "
                               f"{resolved.get('decided_by')} at {resolved.get('decided_at')}")  # fmt: skip
    return Escalation(escalation_id, file, record)


def resolve(settings: Settings, escalation: Escalation, decision: str, text: str | None) -> dict[str, Any]:
    """Record a person's decision once (exclusive create); InputError when someone decided first."""
    who = os.environ.get("WATCHER_OPERATOR") or getpass.getuser()
    record = {"escalation": escalation.id, "decision": decision, "decided_by": who, "decided_at": now_iso(),
              "note" if decision == "approved" else "reason": text}  # fmt: skip
    target = folder(settings) / RESOLVED / escalation.file.name
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    atomic_write_bytes(temp, (json.dumps(record, indent=2) + "\n").encode("utf-8"))
    try:
        os.link(temp, target)  # fails when it exists: one decision per escalation, whoever is first
    except FileExistsError:
        raise InputError(target, f"escalation {escalation.id!r} was decided meanwhile") from None
    finally:
        temp.unlink(missing_ok=True)
    fsync_dir(target.parent)
    return record


def approval_of(escalation: Escalation) -> tuple[Path, str] | None:
    """The pipeline's approval file and request id an escalation came from, if it came from one."""
    resubmit = escalation.record.get("resubmit")
    if not isinstance(resubmit, dict) or resubmit.get("type") != "pending_approval":
        return None
    approval = resubmit.get("approval") or {}
    return Path(str(resubmit.get("file"))), str(approval.get("request_id"))


def reject_approval_file(settings: Settings, escalation: Escalation, resolution: dict[str, Any]) -> bool:
    """Mark the approval file ``rejected`` (keys as the orchestrator's own reject writes them)."""
    source = approval_of(escalation)
    if source is None:
        return False
    file, request_id = source
    return approval_file.set_status(
        settings.path(file), request_id, approval_file.REJECTED, (approval_file.PENDING,),
        rejection_reason=resolution.get("reason"), rejected_by=resolution["decided_by"],
    )  # fmt: skip


def _read(file: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None

"""Decision record bodies a stand-in judge returns: valid records of the evaluation kind, as the real one makes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from watcher.core.clock import now_iso
from watcher.judging.checks import CheckReport
from watcher.judging.records import EvaluationRecord, Timings
from watcher.judging.verdicts import Decision, Verdict


def evaluation_body(file: Path, step: str | None, decision: Decision = "proceed", **extra: Any) -> dict[str, Any]:
    """What a judge that needed no model would return for ``file``; ``extra`` replaces fields."""
    verdict = Verdict(
        decision=decision,
        decided_by="checks",
        rule="fake_judge",
        overridden_by=None,
        model_decision=None,
        model_confidence=None,
    )
    record = EvaluationRecord(
        decided_at=now_iso(),
        decision=decision,
        step=step or "1",
        step_name="fake",
        source_file=str(file),
        source_sha256="0" * 64,
        confidence=None,
        parse_method="checks_only",
        fallback_reason=None,
        payload=None,
        checks=CheckReport(results=()),
        verdict=verdict,
        grammar=None,
        server=None,
        model=None,
        server_build=None,
        timings=Timings(),
        attempts=[],
    )
    return {**record.model_dump(mode="json"), **extra}

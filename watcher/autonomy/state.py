"""Autonomy state persisted in ``folders.state``: parameter values set by approved plans, every plan's verdict
(the history the actions-per-hour limit counts), and escalation files for a person.

A plan is recorded once, under a thread lock and a file lock, in the same write that counts it; a request handled
again after a restart finds its plan and goes on with it instead of being judged (and counted) a second time.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loguru import logger

from watcher.autonomy.policy import PlanContext, Policy, Proposal, Value
from watcher.config import Settings
from watcher.core.atomic import atomic_write_json
from watcher.core.clock import iso
from watcher.core.ids import safe_name
from watcher.errors import PolicyViolation

HOUR_SEC = 3600.0
PLAN_RETENTION_SEC = 7 * 24 * HOUR_SEC
_STATE_LOCK = threading.Lock()


@dataclass
class AutonomyState:
    """``<folders.state>/autonomy.json``: parameter values set by approved plans, and every plan's verdict.

    A plan is recorded once, under a lock, in the same write that counts it; a request handled again after a
    restart finds its plan and goes on with it instead of being judged (and counted) a second time.
    """

    state_dir: Path
    defaults: Mapping[str, Value]
    clock: Callable[[], float] = time.time

    @property
    def file(self) -> Path:
        return self.state_dir / "autonomy.json"

    @contextlib.contextmanager
    def locked(self) -> Iterator[dict[str, Any]]:
        """The state, read under a thread and a file lock; written back when the block ends without error."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        with _STATE_LOCK, (self.state_dir / "autonomy.lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            data = self._read()
            yield data
            cutoff = self.clock() - PLAN_RETENTION_SEC
            data["plans"] = {k: v for k, v in data["plans"].items() if v.get("epoch", 0) >= cutoff}
            atomic_write_json(self.file, data)

    def _read(self) -> dict[str, Any]:
        try:
            data = json.loads(self.file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {"values": {}, "plans": {}}
        except (OSError, ValueError) as exc:
            # Refusing to act beats acting on a history we cannot count.
            raise PolicyViolation(f"{self.file}: unreadable autonomy state ({exc}); a person must repair it") from exc
        if not isinstance(data, dict):
            raise PolicyViolation(f"{self.file}: autonomy state is not a JSON object; a person must repair it")
        data.setdefault("values", {})
        data.setdefault("plans", {})
        return data

    def values(self, data: Mapping[str, Any]) -> dict[str, Value]:
        return {**self.defaults, **data["values"]}

    def recent_actions(self, data: Mapping[str, Any], exclude: str | None = None) -> int:
        since = self.clock() - HOUR_SEC
        return sum(
            len(plan.get("actions", ()))
            for rid, plan in data["plans"].items()
            if rid != exclude and plan.get("approved") and plan.get("epoch", 0) >= since
        )

    def plans_since_retrain(self, data: Mapping[str, Any]) -> int | None:
        """Plans judged since the newest approved plan that ran selfplay or the loop; None: no retrain yet."""
        plans = sorted(data["plans"].values(), key=lambda plan: plan.get("epoch", 0))
        for index in range(len(plans) - 1, -1, -1):
            actions = plans[index].get("actions", ())
            if plans[index].get("approved") and ("run_selfplay" in actions or "run_learning_loop" in actions):
                return len(plans) - 1 - index
        return None

    def snapshot(self) -> dict[str, Any]:
        """The state as it is now, for reading only (nothing is written)."""
        with _STATE_LOCK:
            return self._read()


def decide_plan(
    policy: Policy,
    state: AutonomyState,
    request_id: str,
    proposals: Sequence[Proposal],
    judge_ctx: Callable[[dict[str, Value], int], PlanContext],
) -> dict[str, Any]:
    """The plan record for ``request_id``: found from an earlier run, or judged and recorded now (atomically).

    The record holds the verdict, the values in force before the plan (the baseline for change limits) and the
    actions it counts against the hourly limit.
    """
    with state.locked() as data:
        existing = data["plans"].get(request_id)
        if existing is not None:
            logger.bind(request_id=request_id).info("plan already judged ({}); continuing it", existing["verdict"])
            return dict(existing)
        values = state.values(data)
        ctx = dataclasses.replace(
            judge_ctx(values, state.recent_actions(data)), plans_since_retrain=state.plans_since_retrain(data)
        )
        verdict = policy.check_plan(proposals, ctx)
        now = state.clock()
        record = {
            "epoch": now, "at": iso(now), "approved": verdict.approved,
            "verdict": "approved" if verdict.approved else "denied", "reasons": verdict.reasons,
            "check": verdict.as_dict(), "baseline": values,
            "actions": [p.action for p in proposals if p.action != "no_action"] if verdict.approved else [],
        }  # fmt: skip
        data["plans"][request_id] = record
        return dict(record)


def set_value(state: AutonomyState, name: str, value: Value) -> None:
    with state.locked() as data:
        data["values"][name] = value


def write_escalation(settings: Settings, request_id: str, payload: Mapping[str, Any]) -> Path:
    """``<folders.escalations>/<id>.json`` for a person: what was asked, why it was not done, what ran."""
    folder = settings.path(settings.watcher.folders.escalations)
    target = folder / f"{safe_name(request_id)}.json"
    atomic_write_json(target, {"request_id": request_id, "escalated_at": iso(time.time()), **payload})
    logger.bind(request_id=request_id).warning("escalated to {}: {}", target, payload.get("reasons"))
    return target

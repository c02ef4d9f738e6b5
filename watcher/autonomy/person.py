"""Rules that send a plan to a person rather than forbid it: a person's approval lifts exactly these.

Hard bounds (a parameter's range, its change limits, jobs that are not configured) are checked elsewhere and hold
whoever approves; what is here says only that the watcher must not act alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from watcher.config.jobs import RISK_ORDER, PolicyConfig

if TYPE_CHECKING:
    from watcher.autonomy.policy import PlanContext, Proposal

RETRAIN_ACTIONS = ("run_selfplay", "run_learning_loop")


def person_reasons(cfg: PolicyConfig, proposals: Sequence[Proposal], ctx: PlanContext) -> list[str]:
    """Why this plan needs a person; empty when the watcher may run it alone (or a person approved it)."""
    if ctx.approved_by is not None:
        return []
    reasons: list[str] = []
    if ctx.person_requested:
        reasons.append(ctx.person_requested)
    if ctx.confidence is not None and ctx.confidence < cfg.min_confidence:
        reasons.append(f"confidence {ctx.confidence} is below the policy minimum {cfg.min_confidence}")
    if ctx.risk is not None and RISK_ORDER[ctx.risk] > RISK_ORDER[cfg.max_risk]:
        reasons.append(f"risk {ctx.risk!r} is above the policy maximum {cfg.max_risk!r}")
    planned = sum(1 for p in proposals if p.action != "no_action")
    if planned and ctx.recent_actions + planned > cfg.max_actions_per_hour:
        reasons.append(
            f"{ctx.recent_actions} autonomous action(s) in the last hour plus {planned} proposed exceeds "
            f"the policy maximum of {cfg.max_actions_per_hour} per hour"
        )
    changes = sum(1 for p in proposals if p.action == "adjust_parameter")
    limit = cfg.max_parameters_per_proposal
    if limit is not None and changes > limit:
        reasons.append(f"{changes} parameter changes proposed; policy.max_parameters_per_proposal is {limit}")
    return reasons + approval_reasons(cfg, proposals, ctx)


def approval_reasons(cfg: PolicyConfig, proposals: Sequence[Proposal], ctx: PlanContext) -> list[str]:
    """``policy.approval_required`` and the retrain cooldown."""
    required = cfg.approval_required
    actions = {p.action for p in proposals}
    reasons = []
    retrains = actions & set(RETRAIN_ACTIONS)
    if required.retrain_execution and retrains:
        reasons.append(f"policy.approval_required.retrain_execution: {', '.join(sorted(retrains))} needs a person")
    if required.regime_reset and any(p.reset for p in proposals):
        reasons.append("policy.approval_required.regime_reset: a full reset needs a person")
    if required.parameter_application and "adjust_parameter" in actions:
        reasons.append("policy.approval_required.parameter_application: a parameter change needs a person")
    since = ctx.plans_since_retrain
    if retrains and since is not None and since < cfg.cooldown_runs:
        reasons.append(f"cooldown: {since} request(s) judged since the last retrain, policy.cooldown_runs is "
                       f"{cfg.cooldown_runs}")  # fmt: skip
    return reasons

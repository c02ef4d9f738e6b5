"""The pipeline's ``watcher_policies.json`` as the policy source, and the rules taken from its facts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.jobs.harness import make_settings
from watcher.autonomy.policy import PlanContext, Policy, Proposal
from watcher.config import load_settings
from watcher.errors import ConfigError

pytestmark = pytest.mark.timeout(30)
# The keys the pipeline's file has (values as its v1 policy; comments and unrelated sections trimmed).
PIPELINE_POLICIES = {
    "_note": "pipeline policy", "schema_version": "1.0.0", "test_mode": False,
    "acceptance_rules": {"max_parameter_delta": 0.3, "max_parameters_per_proposal": 3, "cooldown_runs": 3},
    "escalation": {"escalate_on_consecutive_rejects": 3, "escalate_on_divergence": True},
    "v1_approval_required": {"_note": "v1", "retrain_execution": True, "regime_reset": True,
                             "parameter_application": False},
    "selfplay": {"min_fitness": 0.5, "require_human_approval": True},
}  # fmt: skip


def with_policy_file(tmp_path: Path, body: object) -> Path:
    (tmp_path / "watcher_policies.json").write_text(json.dumps(PIPELINE_POLICIES))
    settings = make_settings(tmp_path, pipeline=lambda p: p | {"policy_file": "watcher_policies.json"})
    (tmp_path / "watcher_policies.json").write_text(json.dumps(body))
    return settings.config_dir


def policy_of(tmp_path: Path) -> Policy:
    cfg = load_settings(tmp_path / "config", root=tmp_path).watcher
    return Policy(cfg.policy, cfg.jobs, cfg.learning_loop, frozenset(cfg.steps))


def test_the_pipelines_file_sets_the_policy(tmp_path: Path) -> None:
    with_policy_file(tmp_path, PIPELINE_POLICIES)
    policy = policy_of(tmp_path)
    cfg = policy.config
    assert (cfg.max_parameter_delta, cfg.max_parameters_per_proposal, cfg.cooldown_runs) == (0.3, 3, 3)
    assert cfg.approval_required.retrain_execution and not cfg.approval_required.parameter_application
    assert cfg.min_confidence == 0.6, "keys the file does not have keep the config's values"


@pytest.mark.parametrize("body", ["not json", [1, 2], {"acceptance_rules": {"max_parameter_delta": -1}}])
def test_a_broken_policy_file_is_a_config_error(tmp_path: Path, body: object) -> None:
    config = with_policy_file(tmp_path, body)
    if body == "not json":
        (tmp_path / "watcher_policies.json").write_text("{not json")
    with pytest.raises(ConfigError, match=r"pipeline\.policy_file"):
        load_settings(config, root=tmp_path)


def test_delta_count_and_cooldown(tmp_path: Path) -> None:
    with_policy_file(tmp_path, PIPELINE_POLICIES)
    policy = policy_of(tmp_path)
    values = policy.defaults()  # games 100, learning_rate 0.1 in the job harness
    big = Proposal("adjust_parameter", "r", "games", 100, 140)
    verdict = policy.check_plan([big], PlanContext(values, 0, check_stale_current=False))
    assert any("max_parameter_delta (30%)" in r for r in verdict.reasons)
    approved = PlanContext(values, 0, check_stale_current=False, approved_by="alice")
    assert not policy.check_plan([big], approved).approved, "an approval does not lift a hard bound"

    four = [Proposal("adjust_parameter", "r", "games", 100, 110 + i) for i in range(4)]
    verdict = policy.check_plan(four, PlanContext(values, 0, check_stale_current=False))
    assert any("max_parameters_per_proposal is 3" in r for r in verdict.reasons)

    loop = [Proposal("run_learning_loop", "r")]
    cooling = policy.check_plan(loop, PlanContext(values, 0, plans_since_retrain=1))
    assert any("cooldown: 1 request(s)" in r for r in cooling.reasons)
    cooled = policy.check_plan(loop, PlanContext(values, 0, plans_since_retrain=3))
    assert not any("cooldown" in r for r in cooled.reasons)

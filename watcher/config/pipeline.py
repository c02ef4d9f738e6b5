"""Config for working next to the pipeline's own files: its approval file, the ``episodes``/``survivors_file`` of
its selfplay requests, its ``watcher_policies.json`` as a policy source, the decision log and who is told.

Everything here names files and slots; nothing of the pipeline's layout is assumed beyond what these keys say,
so another pipeline is another config.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import Field

from watcher.config.base import Frozen
from watcher.config.jobs import PolicyConfig
from watcher.errors import ConfigError


class PipelineConfig(Frozen):
    """The pipeline's Chapter 13 files and how its requests map onto the configured jobs."""

    approval_file: Path | None = Field(
        Path("pending_approval.json"),
        description="The orchestrator's approval file, relative to the root: watched, checked against the "
        "policy, its status written back. null: not watched.",
    )
    episodes_parameter: str | None = Field(
        None,
        description="Selfplay job parameter that receives a `selfplay_retrain` request's `episodes` (default 5). "
        "null: `episodes` is checked (1-50) and recorded only.",
    )
    survivors_parameter: str | None = Field(
        None,
        description="Selfplay job parameter that receives `survivors_file` (a path inside the root). null: the "
        "file must exist and is recorded only.",
    )
    policy_file: Path | None = Field(
        None,
        description="The pipeline's `watcher_policies.json`, relative to the root: its `acceptance_rules` and "
        "`v1_approval_required` replace the matching `policy` keys. null: `policy` alone.",
    )


class NotifyClasses(Frozen):
    """Which classes of event run the notify command."""

    critical: bool = Field(True, description="Escalations and an LLM server that is down. Default true.")
    degraded: bool = Field(True, description="Retries and rejected work. Default true.")
    info: bool = Field(False, description="Completed decisions. Default false.")


class NotifyConfig(Frozen):
    """A command run for events a person should know of: argument list, event JSON on stdin, message as the
    last argument."""

    argv: tuple[str, ...] | None = Field(
        None,
        description="Command as an argument list (no shell); the one-line message is appended as the last "
        "argument. null: nobody is notified.",
    )
    timeout_sec: float = Field(10.0, gt=0, le=300, description="The command is killed after this long. Default 10.")
    classes: NotifyClasses = Field(default_factory=NotifyClasses, description="Event classes that notify.")


def policy_from_file(policy: PolicyConfig, file: Path) -> PolicyConfig:
    """``policy`` with the keys ``watcher_policies.json`` sets; a missing or broken file is a ConfigError."""
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(file, "pipeline.policy_file", f"cannot read the pipeline's policy file: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(file, "pipeline.policy_file", "the pipeline's policy file is not a JSON object")
    update: dict[str, Any] = {}
    rules = _section(data, "acceptance_rules", file)
    for ours, theirs in (
        ("max_parameter_delta", "max_parameter_delta"),
        ("max_parameters_per_proposal", "max_parameters_per_proposal"),
        ("cooldown_runs", "cooldown_runs"),
        ("min_confidence", "min_confidence"),
    ):
        if theirs in rules:
            update[ours] = rules[theirs]
    approvals = _section(data, "v1_approval_required", file)
    if approvals:
        known = {k: v for k, v in approvals.items() if not k.startswith("_")}
        update["approval_required"] = policy.approval_required.model_dump() | known
    try:
        return PolicyConfig.model_validate(policy.model_dump() | update)
    except ValueError as exc:
        raise ConfigError(file, "pipeline.policy_file", f"values do not fit the policy: {exc}") from exc


def _section(data: dict[str, Any], key: str, file: Path) -> dict[str, Any]:
    section = data.get(key, {})
    if not isinstance(section, dict):
        raise ConfigError(file, f"{key}", "expected an object")
    return section

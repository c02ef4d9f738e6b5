"""Config sections for GPU jobs and autonomy: ``jobs``, ``policy`` and ``learning_loop`` in ``config/watcher.json``.

A job is an argument list, never a shell line. Its ``{name}`` placeholders are the only places a parameter can
reach, each slot declared with a type and bounds; the policy says which of those parameters the watcher may
change on its own, by how much, and how often it may act without a person.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr, model_validator

from watcher.config.approvals import ApprovalRequired
from watcher.config.steps import STEP_KEY_PATTERN
from watcher.errors import PolicyViolation

PARAMETER_NAME_RE = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"
JOB_NAME_RE = r"^[a-z][a-z0-9_-]{0,47}$"
PLACEHOLDER_RE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")

Scalar = StrictBool | StrictInt | StrictFloat | StrictStr
ParameterType = Literal["int", "float", "str", "bool"]
Action = Literal["adjust_parameter", "run_selfplay", "run_learning_loop", "no_action"]
Risk = Literal["low", "medium", "high"]
ALL_ACTIONS: tuple[Action, ...] = ("adjust_parameter", "run_selfplay", "run_learning_loop", "no_action")
RISK_ORDER: dict[Risk, int] = {"low": 0, "medium": 1, "high": 2}


class JobsBase(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ParameterSlot(JobsBase):
    """A parameter a job accepts: its type, its bounds and the value used until something changes it."""

    type: ParameterType = Field(..., description="Value type: int, float, str or bool. Required.")
    default: Scalar = Field(..., description="Value used until an approved change sets another. Required.")
    minimum: float | None = Field(None, description="Smallest accepted value (int, float). null: no bound.")
    maximum: float | None = Field(None, description="Largest accepted value (int, float). null: no bound.")
    choices: tuple[str, ...] | None = Field(None, description="Accepted values of a str slot. null: any safe text.")
    max_length: int = Field(200, ge=1, le=4096, description="Longest accepted str value, in characters.")

    @model_validator(mode="after")
    def _bounds_and_default(self) -> ParameterSlot:
        if self.minimum is not None and self.maximum is not None and self.minimum > self.maximum:
            raise ValueError(f"minimum {self.minimum} is above maximum {self.maximum}")
        if self.type not in ("int", "float") and (self.minimum is not None or self.maximum is not None):
            raise ValueError(f"minimum/maximum apply to int and float slots, not {self.type}")
        if self.choices is not None and self.type != "str":
            raise ValueError("choices apply to str slots only")
        # Checked by the same code that checks values from requests, so a bad default cannot ship.
        try:
            check_value("default", self.default, self)
        except PolicyViolation as exc:
            raise ValueError(str(exc)) from None
        return self


class JobConfig(JobsBase):
    """One command the watcher may run: argument list, where, with what, for how long, and what it writes."""

    argv: tuple[str, ...] = Field(
        ...,
        min_length=1,
        description="Command as an argument list (no shell). `{name}` fills a declared parameter, as a whole "
        "argument or inside one. Relative program paths resolve against the root. Required.",
    )
    parameters: dict[str, ParameterSlot] = Field(
        default_factory=dict, description="The slots `argv` may use, by name. Default: none."
    )
    cwd: Path | None = Field(None, description="Working directory, relative to the root. null: the root.")
    env: dict[str, str] = Field(
        default_factory=dict, description="Variables added to the watcher's environment. Default: none."
    )
    timeout_sec: float = Field(
        3600.0, gt=0, description="The job's process group is stopped after this long. Default 3600."
    )
    log_file: Path | None = Field(
        None, description="stdout and stderr, relative to the root. null: `<jobs.log_dir>/<job id>.log`."
    )
    output: Path = Field(..., description="File the job writes, relative to the root; judged afterwards. Required.")
    judge_step: str = Field(
        ...,
        pattern=STEP_KEY_PATTERN,
        description="Pipeline step (a key of `steps`) whose schema, checks and grammar judge the output. Required.",
    )

    @model_validator(mode="after")
    def _placeholders_declared(self) -> JobConfig:
        bad = [name for name in self.parameters if not re.match(PARAMETER_NAME_RE, name)]
        if bad:
            raise ValueError(f"parameter names must match {PARAMETER_NAME_RE}: {bad}")
        used = {name for arg in self.argv for name in PLACEHOLDER_RE.findall(arg)}
        undeclared = sorted(used - set(self.parameters))
        if undeclared:
            raise ValueError(f"argv uses undeclared parameter(s) {undeclared}; declare them in `parameters`")
        return self


class LoopStepConfig(JobConfig):
    """One step of the learning loop: a job plus its name in the trace."""

    name: str = Field(..., pattern=JOB_NAME_RE, description="Name of the step in traces and job ids. Required.")


class JobsConfig(JobsBase):
    """GPU jobs: the selfplay command and how every job is run."""

    selfplay: JobConfig | None = Field(
        None, description="Command run by `run_selfplay`. null: selfplay is not configured and is escalated."
    )
    log_dir: Path = Field(Path(".watcher/logs/jobs"), description="Default folder of job logs, relative to the root.")
    kill_grace_sec: float = Field(
        10.0, gt=0, description="Seconds between SIGTERM and SIGKILL when a job overruns. Default 10."
    )
    poll_interval_sec: float = Field(
        0.5, gt=0, le=10, description="How often a job found running after a restart is checked for exit. Default 0.5."
    )


class LearningLoopConfig(JobsBase):
    """The learning loop: steps run in order, each judged before the next starts."""

    steps: tuple[LoopStepConfig, ...] = Field(
        (), description="Steps in order. Empty: the learning loop is not configured and is escalated."
    )
    max_retries: int = Field(
        2, ge=0, le=10, description="Reruns of one step with adjusted parameters after a retry verdict. Default 2."
    )

    @model_validator(mode="after")
    def _unique_names(self) -> LearningLoopConfig:
        names = [step.name for step in self.steps]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"step names must be unique: {duplicates}")
        return self


class ParameterPolicy(JobsBase):
    """What the watcher may do to one parameter without asking a person."""

    minimum: float | None = Field(None, description="Smallest value it may set (numbers). null: the slot's bound.")
    maximum: float | None = Field(None, description="Largest value it may set (numbers). null: the slot's bound.")
    max_change: float | None = Field(
        None, gt=0, description="Largest absolute change per request (numbers). null: no limit."
    )
    max_change_ratio: float | None = Field(
        None, gt=0, description="Largest change per request as a fraction of the current value. null: no limit."
    )
    choices: tuple[str, ...] | None = Field(
        None, description="Values it may set (str, bool as 'true'/'false'). null: any value the slot accepts."
    )


class PolicyConfig(JobsBase):
    """Limits of autonomous action, applied before anything runs. Outside them: an escalation, nothing run."""

    allowed_actions: tuple[Action, ...] = Field(
        ALL_ACTIONS, description="Actions that may run without a person. Default: all four."
    )
    parameters: dict[str, ParameterPolicy] = Field(
        default_factory=dict,
        description="Parameters that may be changed without a person, with their limits. Default: none.",
    )
    min_confidence: float = Field(0.7, ge=0, le=1, description="Proposals below this confidence are escalated.")
    max_risk: Risk = Field("medium", description="Proposals above this risk (low < medium < high) are escalated.")
    max_actions_per_hour: int = Field(
        4,
        ge=0,
        description="Autonomous actions (no_action excluded) in any 60 minutes, counted from the persisted "
        "history. Default 4.",
    )
    reject_stale_current: bool = Field(
        True,
        description="Escalate an adjustment whose `current` differs from the value in force: it was "
        "proposed from stale diagnostics.",
    )
    max_parameter_delta: float | None = Field(
        None,
        gt=0,
        description="Largest change of any numeric parameter per request, as a fraction of the value in force "
        "(a hard bound: an approval does not lift it). null: only the per-parameter limits.",
    )
    max_parameters_per_proposal: int | None = Field(
        None, ge=1, description="Most parameter changes one request may propose. null: no limit."
    )
    cooldown_runs: int = Field(
        0,
        ge=0,
        description="Requests that must be judged after an approved retrain before the next retrain may run "
        "without a person. Default 0.",
    )
    approval_required: ApprovalRequired = Field(
        default_factory=ApprovalRequired, description="Kinds of action that always wait for a person."
    )


# ---------------------------------------------------------------------------------------------------------------
# Filling slots
# ---------------------------------------------------------------------------------------------------------------

# Strings may hold only these characters: no shell metacharacters, quotes, whitespace or control characters, so a
# value stays one inert argument even if a user's command hands it to a shell of its own.
SAFE_TEXT_RE = re.compile(r"^[A-Za-z0-9_.,:=+@%/-]*$")
UNSAFE_CHAR_RE = re.compile(r"[^A-Za-z0-9_.,:=+@%/-]")


def check_value(name: str, value: object, slot: ParameterSlot) -> bool | int | float | str:
    """The value, normalised to the slot's type; PolicyViolation naming the parameter and the rule broken."""
    if slot.type == "bool":
        if not isinstance(value, bool):
            raise PolicyViolation(f"parameter {name!r}: expects a bool, got {value!r}")
        return value
    if slot.type in ("int", "float"):
        return _check_number(name, value, slot)
    if not isinstance(value, str):
        raise PolicyViolation(f"parameter {name!r}: expects a string, got {value!r}")
    return _check_text(name, value, slot)


def _check_number(name: str, value: object, slot: ParameterSlot) -> int | float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PolicyViolation(f"parameter {name!r}: expects {slot.type}, got {value!r}")
    number: int | float = value
    if slot.type == "int":
        if isinstance(value, float) and not value.is_integer():
            raise PolicyViolation(f"parameter {name!r}: expects int, got {value!r}")
        number = int(value)
    else:
        number = float(value)
    if not math.isfinite(number):
        raise PolicyViolation(f"parameter {name!r}: {value!r} is not a finite number")
    if slot.minimum is not None and number < slot.minimum:
        raise PolicyViolation(f"parameter {name!r}: {number} is below the minimum {slot.minimum}")
    if slot.maximum is not None and number > slot.maximum:
        raise PolicyViolation(f"parameter {name!r}: {number} is above the maximum {slot.maximum}")
    return number


def _check_text(name: str, value: str, slot: ParameterSlot) -> str:
    if slot.choices is not None:
        if value not in slot.choices:
            raise PolicyViolation(f"parameter {name!r}: {value!r} is not one of {list(slot.choices)}")
        return value
    if len(value) > slot.max_length:
        raise PolicyViolation(f"parameter {name!r}: longer than {slot.max_length} characters")
    bad = UNSAFE_CHAR_RE.search(value)
    if bad:
        raise PolicyViolation(
            f"parameter {name!r}: character {bad.group()!r} is not allowed "
            "(shell metacharacters, quotes, whitespace and control characters are refused)"
        )
    if ".." in value.split("/"):
        raise PolicyViolation(f"parameter {name!r}: '..' path segments are not allowed")
    if value.startswith(("-", "/")) or not value:
        # A leading dash would read as an option; a leading slash would leave the job's folders.
        raise PolicyViolation(f"parameter {name!r}: must not be empty or start with '-' or '/'")
    return value


def render_value(value: bool | int | float | str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value) if not isinstance(value, float) else repr(value)


def render_argv(job: JobConfig, values: dict[str, bool | int | float | str]) -> list[str]:
    """The job's argument list with every placeholder filled from ``values`` (checked against its slot)."""
    checked = {name: check_value(name, values.get(name, slot.default), slot) for name, slot in job.parameters.items()}

    def fill(match: re.Match[str]) -> str:
        return render_value(checked[match.group(1)])

    return [PLACEHOLDER_RE.sub(fill, arg) for arg in job.argv]

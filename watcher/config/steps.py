"""The pipeline's steps as ``config/watcher.json`` describes them: where each writes, how it is judged, its checks."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from watcher.config.base import Frozen

# A dotted path into a JSON document: names and [index] parts, e.g. ``metrics.trials[0].score``.
CHECK_PATH_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\[\d+\])*(\.[A-Za-z_][A-Za-z0-9_]*(\[\d+\])*)*$")


class StepConfig(Frozen):
    """One pipeline step whose output files are judged."""

    name: str = Field(description="Human name of the step.")
    output_glob: str = Field(description="Glob (relative to the root) of the files the step writes.")
    schema_file: str = Field(description="JSON Schema of the output, a file name in schemas/.")
    grammar: str = Field("agent_decision", description="Grammar used to judge the output.")
    ask_model: Literal["always", "borderline", "never"] = Field(
        "always",
        description="always: the model judges every output; borderline: only outputs the checks cannot "
        "settle; never: checks alone.",
    )
    borderline_margin: float = Field(
        0.1,
        ge=0,
        description="In borderline mode, a check passes clearly when it clears its threshold by this "
        "fraction of the threshold.",
    )
    on_hard_failure: Literal["retry", "escalate"] = Field(
        "retry", description="Final decision when a hard check fails."
    )
    min_confidence: float = Field(
        0.0, ge=0, le=1, description="A model decision below this confidence becomes escalate."
    )
    instructions: str = Field("", description="Extra instructions for the model about this step.")


class Check(Frozen):
    """A deterministic threshold on one value of a step output."""

    path: str = Field(description="Dotted path into the output, e.g. `metrics.best_score` or `trials[0].x`.")
    op: Literal[">=", "<=", ">", "<", "==", "!=", "between"] = Field(description="Comparison.")
    value: float | None = Field(None, description="Threshold for every op but `between`.")
    range: tuple[float, float] | None = Field(None, description="[low, high], inclusive, for `between`.")
    severity: Literal["hard", "soft"] = Field("hard", description="hard: a failure can never proceed.")
    hard_limit: float | None = Field(
        None,
        description="Soft checks with `>=`, `<=`, `>` or `<`: a value beyond this fails the check as hard. "
        "Between `value` and `hard_limit` the failure stays soft (the model weighs it).",
    )
    hard_range: tuple[float, float] | None = Field(
        None,
        description="Soft `between` checks: a value outside this wider [low, high] fails the check as hard.",
    )
    message: str = Field(description="What it means when the check fails.")

    @field_validator("path")
    @classmethod
    def _path_syntax(cls, value: str) -> str:
        if not CHECK_PATH_RE.match(value):
            raise ValueError(f"bad path syntax {value!r}: use names and [index], joined by dots")
        return value

    @model_validator(mode="after")
    def _operand(self) -> Check:
        if self.op == "between":
            if self.range is None or self.range[0] > self.range[1]:
                raise ValueError("op 'between' needs range [low, high] with low <= high")
        elif self.value is None:
            raise ValueError(f"op {self.op!r} needs a value")
        self._check_hard_tier()
        return self

    def _check_hard_tier(self) -> None:
        """A hard tier belongs to a soft check and lies beyond its threshold, on the failing side."""
        if self.hard_limit is None and self.hard_range is None:
            return
        if self.severity != "soft":
            raise ValueError("hard_limit and hard_range belong to soft checks; a hard check already fails hard")
        if self.op == "between":
            self._check_hard_range()
        elif self.hard_range is not None:
            raise ValueError(f"hard_range belongs to op 'between'; op {self.op!r} takes hard_limit")
        elif self.op in ("==", "!="):
            raise ValueError(f"op {self.op!r} has no side to fail on: it takes no hard_limit")
        else:
            self._check_hard_limit()

    def _check_hard_range(self) -> None:
        if self.hard_limit is not None:
            raise ValueError("op 'between' takes hard_range [low, high], not hard_limit")
        assert self.range is not None and self.hard_range is not None
        low, high = self.hard_range
        if not low <= self.range[0] <= self.range[1] <= high:
            raise ValueError(f"hard_range {list(self.hard_range)} must contain range {list(self.range)}")

    def _check_hard_limit(self) -> None:
        assert self.value is not None and self.hard_limit is not None
        lower_fails = self.op in (">=", ">")
        if (self.hard_limit > self.value) if lower_fails else (self.hard_limit < self.value):
            side = "at or below" if lower_fails else "at or above"
            raise ValueError(
                f"hard_limit {self.hard_limit:g} must lie {side} value {self.value:g}: on the side where op "
                f"{self.op!r} fails"
            )

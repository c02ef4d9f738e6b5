"""The pipeline's steps as ``config/watcher.json`` describes them: where each writes, how it is judged, its checks."""

from __future__ import annotations

import re
from typing import Literal

import jmespath
from jmespath.exceptions import JMESPathError
from pydantic import Field, field_validator, model_validator

from watcher.config.base import Frozen

# A step key: a number as the pipeline names its steps, "1", "12" or "2.5".
STEP_KEY_PATTERN = r"^[1-9][0-9]*(\.[0-9]+)?$"
STEP_KEY_RE = re.compile(STEP_KEY_PATTERN)
# A plain dotted field name inside one record of a streamed array: ``features`` or ``metadata.prng_type``.
FIELD_PATH_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


def step_order(step: str) -> tuple[int, ...]:
    """Sort key of a step key: "2" < "2.5" < "3" < "10" (numbers part by part, not as text)."""
    return tuple(int(part) for part in step.split("."))


def compile_expression(value: str) -> str:
    """A JMESPath expression, checked when the config loads so a typo is a config error, not a failed check."""
    try:
        jmespath.compile(value)
    except JMESPathError as exc:
        raise ValueError(f"bad JMESPath expression {value!r}: {exc}") from None
    return value


class StreamField(Frozen):
    """One value aggregated over every record of a streamed array."""

    path: str = Field(
        description="Dotted field name inside a record. A number is aggregated as count/min/mean/max; an object "
        "or array by its length; a text by its distinct values (up to 20)."
    )

    @field_validator("path")
    @classmethod
    def _syntax(cls, value: str) -> str:
        if not FIELD_PATH_RE.match(value):
            raise ValueError(f"bad field path {value!r}: names joined by dots")
        return value


class ShareRule(Frozen):
    """Share of the records whose field compares true, e.g. the share of seeds scoring at least 0.5."""

    path: str = Field(description="Dotted field name inside a record.")
    op: Literal[">=", "<=", ">", "<", "==", "!="] = Field(description="Comparison.")
    value: float | str | bool | None = Field(description="Compared with the field's value.")

    @field_validator("path")
    @classmethod
    def _syntax(cls, value: str) -> str:
        return StreamField._syntax(value)


class StreamSpec(Frozen):
    """A step output that is one large JSON array of records, summarised by streaming, never loaded whole.

    The checks and the model see the summary: ``records`` (count), ``fields.<name>`` ({count, missing,
    not_number, min, mean, max, std} for numbers, {count, missing, min, mean, max} of the length for objects and arrays,
    {count, values} for texts), ``shares.<name>`` (fraction 0..1), ``sample`` (the first records, which are
    also what the schema's ``items`` is checked on) and ``aggregated`` (a sentence saying what was read).
    """

    fields: dict[str, StreamField] = Field(default_factory=dict, description="Name -> field aggregated.")
    shares: dict[str, ShareRule] = Field(default_factory=dict, description="Name -> share of matching records.")
    sample: int = Field(3, ge=1, le=50, description="First records kept whole, schema-checked and shown.")


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
    instructions: str = Field("", description="What a good and a bad result of this step is, for the model.")
    ready_when: str | None = Field(
        None,
        description="JMESPath expression on the output; the file is judged only once it is true (e.g. "
        "`status == 'complete'`). Until then the file is waiting for its step to finish: no model call, no "
        "rejection. null: a file is ready as soon as it parses.",
    )
    stream: StreamSpec | None = Field(
        None, description="Set for an output that is one large JSON array: summarised by streaming."
    )

    @field_validator("ready_when")
    @classmethod
    def _ready_syntax(cls, value: str | None) -> str | None:
        return value if value is None else compile_expression(value)


class Check(Frozen):
    """A deterministic threshold on one value of a step output, or on a value derived from it."""

    path: str = Field(
        description="JMESPath expression on the output: a dotted path (`training_metrics.r2`), or a derived "
        "value: `div(a, b)` (a ratio), `length(x)`, `min(x[*].score)`, `avg(...)`, `share(x, 'score >= `0.5`')` "
        "(fraction of records matching). On a streamed output it reads the summary (`records`, "
        "`fields.score.mean`, `shares.<name>`)."
    )
    file: str | None = Field(
        None,
        description="Read a second file of the step instead, relative to the judged file's folder (e.g. "
        "`bidirectional_survivors.json` beside step 1's config). A streamed step's file is read as its summary.",
    )
    op: Literal[">=", "<=", ">", "<", "==", "!=", "between", "in", "not_in"] = Field(description="Comparison.")
    value: float | None = Field(None, description="Threshold for `>=`, `<=`, `>`, `<`, `==`, `!=`.")
    values: tuple[str | float | bool, ...] | None = Field(
        None, description="Allowed (`in`) or forbidden (`not_in`) values, e.g. enum values of `status`."
    )
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
    source: str = Field(
        "",
        description="Where the threshold comes from (a file:line of the pipeline's code or docs), and which "
        "source was followed where they disagree.",
    )

    @field_validator("path")
    @classmethod
    def _path_syntax(cls, value: str) -> str:
        return compile_expression(value)

    @model_validator(mode="after")
    def _operand(self) -> Check:
        if self.op == "between":
            if self.range is None or self.range[0] > self.range[1]:
                raise ValueError("op 'between' needs range [low, high] with low <= high")
        elif self.op in ("in", "not_in"):
            if not self.values:
                raise ValueError(f"op {self.op!r} needs values [...]")
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
        elif self.op in ("==", "!=", "in", "not_in"):
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

"""Deterministic checks on a step output: the configured thresholds, evaluated without any model.

Each :class:`~watcher.config.Check` names a value by a dotted path (``metrics.validation.auc``,
``top_trials[0].score``), a comparison and a threshold. :func:`run_checks` evaluates every check against a parsed
document and returns a :class:`CheckReport` with one :class:`CheckResult` per check, in config order.

A result's ``margin`` says how far the value clears its threshold, relative to the threshold: positive when it
passes, negative when it fails. For ``>=`` / ``>`` it is ``(actual - value) / |value|``, for ``<=`` / ``<`` it is
``(value - actual) / |value|``, for ``between`` the smaller of the two margins to ``low`` and ``high``. A
threshold of 0 has no relative scale, so the margin is the absolute difference. ``==`` and ``!=`` are exact and
have no margin. A path that is not in the document, or a value that is not a finite number, fails the check; NaN
and the infinities (refused when a file is read, but a caller may pass a document of its own) fail it as hard.

A soft check may carry a hard tier (``hard_limit``, or ``hard_range`` for ``between``), the warn-and-fail pair of
thresholds that monitoring users know: a value that misses ``value`` but not the hard tier is a soft failure, left
to the model's judgement; a value past the hard tier fails the check as hard, so it can never proceed. The
result's ``severity`` is the effective one. A missing value stays a soft failure: there is no distance to judge.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, computed_field, model_validator

from watcher.config import Check

Status = Literal["passed", "failed", "missing", "not_a_number"]

_SEGMENT_RE = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)((?:\[\d+\])*)")
_INDEX_RE = re.compile(r"\[(\d+)\]")
_ZERO_SCALE = 1e-12
_SHOWN_CHARS = 80
_COMPARISONS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    ">": operator.gt,
    "<": operator.lt,
    "==": operator.eq,
    "!=": operator.ne,
}


class CheckResult(BaseModel):
    """The outcome of one check on one document."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    path: str
    op: str
    value: float | None
    range: tuple[float, float] | None
    severity: Literal["hard", "soft"]
    hard_limit: float | None = None
    hard_range: tuple[float, float] | None = None
    message: str
    status: Status
    passed: bool
    actual: float | int | str | bool | None
    margin: float | None

    def describe(self) -> str:
        """One line for people and prompts, e.g. ``FAIL hard best.score = 0.54, needs >= 0.6: <message>``."""
        head = "PASS" if self.passed else "FAIL"
        need = f"between {self.range[0]:g} and {self.range[1]:g}" if self.range else f"{self.op} {self.value:g}"
        if self.status == "missing":
            got = "is missing"
        elif self.status == "not_a_number":
            got = f"= {self.actual!r} (not a number)"
        else:
            got = f"= {self.actual:g}" if isinstance(self.actual, int | float) else f"= {self.actual!r}"
        text = f"{head} {self.severity} {self.path} {got}, needs {need}"
        if self.margin is not None:
            text += f" (margin {self.margin:+.3f})"
        if self.hard_range is not None:
            text += f", hard outside {self.hard_range[0]:g}..{self.hard_range[1]:g}"
        elif self.hard_limit is not None:
            text += f", hard beyond {self.hard_limit:g}"
        return text if self.passed else f"{text}: {self.message}"


class CheckReport(BaseModel):
    """Every check of a step on one document, in config order."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    results: tuple[CheckResult, ...]

    @model_validator(mode="before")
    @classmethod
    def _drop_computed(cls, data: Any) -> Any:
        """A report read back from a record carries its computed fields; they are derived, not input."""
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if k not in ("hard_failed", "soft_failed")}
        return data

    @computed_field  # type: ignore[prop-decorator]
    @property
    def hard_failed(self) -> tuple[str, ...]:
        """Paths of the failed hard checks."""
        return tuple(r.path for r in self.results if not r.passed and r.severity == "hard")

    @computed_field  # type: ignore[prop-decorator]
    @property
    def soft_failed(self) -> tuple[str, ...]:
        """Paths of the failed soft checks."""
        return tuple(r.path for r in self.results if not r.passed and r.severity == "soft")

    @property
    def all_passed(self) -> bool:
        return all(r.passed for r in self.results)

    def failures(self, severity: Literal["hard", "soft"]) -> tuple[CheckResult, ...]:
        return tuple(r for r in self.results if not r.passed and r.severity == severity)

    def lines(self) -> list[str]:
        """One line per check, for a prompt or a log."""
        return [r.describe() for r in self.results]


def run_checks(checks: Sequence[Check], document: Any) -> CheckReport:
    """Evaluate ``checks`` against a parsed JSON document; never raises for anything inside the document."""
    return CheckReport(results=tuple(evaluate(check, document) for check in checks))


def evaluate(check: Check, document: Any) -> CheckResult:
    found, raw = lookup(document, check.path)
    base = check.model_dump(include={"path", "op", "value", "range", "hard_limit", "hard_range", "message"})
    if not found:
        return CheckResult(**base, severity=check.severity, status="missing", passed=False, actual=None, margin=None)
    if not is_number(raw):
        # NaN or an infinity is a metric whose computation broke: it fails as hard, never left to the model.
        severity = "hard" if isinstance(raw, float) else check.severity
        return CheckResult(
            **base, severity=severity, status="not_a_number", passed=False, actual=shown(raw), margin=None
        )
    actual = float(raw)
    passed = compare(check, actual)
    return CheckResult(
        **base,
        severity="hard" if not passed and beyond_hard_tier(check, actual) else check.severity,
        status="passed" if passed else "failed",
        passed=passed,
        actual=raw,
        margin=margin(check, actual),
    )


def beyond_hard_tier(check: Check, actual: float) -> bool:
    """Whether a failing value of a soft check lies past its hard tier, so that the failure counts as hard.

    A missing or non-numeric value has no distance to measure and stays a soft failure, for the model to weigh.
    """
    if check.hard_range is not None:
        return not check.hard_range[0] <= actual <= check.hard_range[1]
    if check.hard_limit is None:
        return False
    if check.op in (">=", ">"):
        return actual < check.hard_limit
    return actual > check.hard_limit


def lookup(document: Any, path: str) -> tuple[bool, Any]:
    """``(True, value)`` at a dotted path with ``[index]`` parts, or ``(False, None)`` when any part is absent."""
    current = document
    for key in split_path(path):
        if isinstance(key, int):
            if not isinstance(current, list) or key >= len(current):
                return False, None
        elif not isinstance(current, dict) or key not in current:
            return False, None
        current = current[key]
    return True, current


def split_path(path: str) -> list[str | int]:
    """``a.b[0][2].c`` -> ``["a", "b", 0, 2, "c"]``; the syntax was validated when the config loaded."""
    keys: list[str | int] = []
    for segment in path.split("."):
        match = _SEGMENT_RE.fullmatch(segment)
        if match is None:
            raise ValueError(f"bad path syntax {path!r} at {segment!r}")
        keys.append(match.group(1))
        keys.extend(int(index) for index in _INDEX_RE.findall(match.group(2)))
    return keys


def is_number(raw: Any) -> bool:
    # JSON true/false are not numbers even though Python's bool is an int; NaN and infinities pass no threshold.
    return isinstance(raw, int | float) and not isinstance(raw, bool) and math.isfinite(raw)


def shown(raw: Any) -> float | int | str | bool | None:
    """A scalar as it was; a float that is not finite, an object or an array as a short text."""
    if isinstance(raw, bool | int | None) or (isinstance(raw, float) and math.isfinite(raw)):
        return raw
    if isinstance(raw, str):
        return raw[:_SHOWN_CHARS]
    if isinstance(raw, dict):
        return "<object>"
    if isinstance(raw, list):
        return "<array>"
    if isinstance(raw, float):  # not finite: spelled as the non-standard JSON that carried it
        return "NaN" if math.isnan(raw) else ("Infinity" if raw > 0 else "-Infinity")
    return str(raw)[:_SHOWN_CHARS]


def compare(check: Check, actual: float) -> bool:
    if check.op == "between":
        assert check.range is not None  # guaranteed by Check's validator
        return check.range[0] <= actual <= check.range[1]
    assert check.value is not None  # guaranteed by Check's validator
    return _COMPARISONS[check.op](actual, check.value)


def margin(check: Check, actual: float) -> float | None:
    """How far ``actual`` clears the threshold, relative to it (negative: how far it misses)."""
    if check.op == "between":
        assert check.range is not None
        low, high = check.range
        return min((actual - low) / scale(low), (high - actual) / scale(high))
    assert check.value is not None
    if check.op in (">=", ">"):
        return (actual - check.value) / scale(check.value)
    if check.op in ("<=", "<"):
        return (check.value - actual) / scale(check.value)
    return None


def scale(threshold: float) -> float:
    return abs(threshold) if abs(threshold) > _ZERO_SCALE else 1.0

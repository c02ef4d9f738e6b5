"""Deterministic checks on a step output: the configured thresholds, evaluated without any model.

Each :class:`~watcher.config.Check` names a value by a JMESPath expression, a comparison and a threshold. A plain
dotted path (``training_metrics.r2``, ``trials[0].score``) is a JMESPath expression too; derived values use its
functions (``length``, ``min``, ``max``, ``avg``, ``sum``) and two of ours: ``div(a, b)`` for a ratio of two fields
and ``share(array, 'condition')`` for the fraction of records matching a condition. JMESPath is a specified,
well-kept language with a maintained Python implementation, so the config gains ratios, aggregates and filters
without a hand-written parser. A check may read a second file of the step (``file``), given by the caller.
:func:`run_checks` evaluates every check and returns a :class:`CheckReport` with one :class:`CheckResult` per
check, in config order.

A result's ``margin`` says how far the value clears its threshold, relative to the threshold: positive when it
passes, negative when it fails. For ``>=`` / ``>`` it is ``(actual - value) / |value|``, for ``<=`` / ``<`` it is
``(value - actual) / |value|``, for ``between`` the smaller of the two margins to ``low`` and ``high``. A
threshold of 0 has no relative scale, so the margin is the absolute difference. ``==`` and ``!=`` are exact and
have no margin; ``in`` / ``not_in`` compare with a list of allowed or forbidden values (enums such as ``status``) and
have no margin. A path that is not in the document (or is null), or a value that is not a finite number, fails
the check; NaN and the infinities (refused when a file is read, but a caller may pass a document of its own) fail
it as hard.

A soft check may carry a hard tier (``hard_limit``, or ``hard_range`` for ``between``), the warn-and-fail pair of
thresholds that monitoring users know: a value that misses ``value`` but not the hard tier is a soft failure, left
to the model's judgement; a value past the hard tier fails the check as hard, so it can never proceed. The
result's ``severity`` is the effective one. A missing value stays a soft failure: there is no distance to judge.
"""

from __future__ import annotations

import json
import math
import operator
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any, Literal

import jmespath
from jmespath import functions
from jmespath.exceptions import JMESPathError
from jmespath.parser import ParsedResult
from pydantic import BaseModel, ConfigDict, computed_field, model_validator

from watcher.config import Check

Status = Literal["passed", "failed", "missing", "not_a_number"]
# A check's second file, by its ``file`` name: (found, document); absent files are (False, None).
Companion = Callable[[str], tuple[bool, Any]]

_ZERO_SCALE = 1e-12
_SHOWN_CHARS = 80
# The comparison of each op, shared with the streamed summaries' share rules.
COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
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
    file: str | None = None
    op: str
    value: float | None
    values: tuple[str | float | bool, ...] | None = None
    range: tuple[float, float] | None
    severity: Literal["hard", "soft"]
    hard_limit: float | None = None
    hard_range: tuple[float, float] | None = None
    message: str
    status: Status
    passed: bool
    actual: bool | int | float | str | None
    margin: float | None

    def describe(self) -> str:
        """One line for people and prompts, e.g. ``FAIL hard best.score = 0.54, needs >= 0.6: <message>``."""
        head = "PASS" if self.passed else "FAIL"
        if self.range:
            need = f"between {self.range[0]:g} and {self.range[1]:g}"
        elif self.values is not None:
            need = f"{self.op.replace('_', ' ')} {json.dumps(list(self.values))}"
        else:
            need = f"{self.op} {self.value:g}"
        if self.status == "missing":
            got = "is missing"
        elif self.status == "not_a_number":
            got = f"= {self.actual!r} (not a number)"
        else:
            numeric = isinstance(self.actual, int | float) and not isinstance(self.actual, bool)
            got = f"= {self.actual:g}" if numeric else f"= {json.dumps(self.actual)}"
        where = f"{self.file}: " if self.file else ""
        text = f"{head} {self.severity} {where}{self.path} {got}, needs {need}"
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


def _no_companion(file: str) -> tuple[bool, Any]:
    return False, None


def run_checks(checks: Sequence[Check], document: Any, companion: Companion = _no_companion) -> CheckReport:
    """Evaluate ``checks`` against a parsed JSON document (or a second file from ``companion``); never raises for
    anything inside a document."""
    return CheckReport(results=tuple(evaluate(check, document, companion) for check in checks))


_FIELDS = {"path", "file", "op", "value", "values", "range", "hard_limit", "hard_range", "message"}


def evaluate(check: Check, document: Any, companion: Companion = _no_companion) -> CheckResult:
    found, raw = companion(check.file) if check.file is not None else (True, document)
    if found:
        found, raw = lookup(raw, check.path)
    base = check.model_dump(include=_FIELDS)
    if not found:
        return CheckResult(**base, severity=check.severity, status="missing", passed=False, actual=None, margin=None)
    if check.op in ("in", "not_in"):
        passed = is_among(raw, check.values or ()) == (check.op == "in")
        return CheckResult(
            **base,
            severity=check.severity,
            status="passed" if passed else "failed",
            passed=passed,
            actual=shown(raw),
            margin=None,
        )
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
    """``(True, value)`` of a JMESPath expression, or ``(False, None)`` when it finds nothing (absent or null)."""
    try:
        value = _compiled(path).search(document, options=_OPTIONS)
    except JMESPathError:  # e.g. a function given the wrong type by this document: the value is not there
        return False, None
    return (value is not None), value


@lru_cache(maxsize=512)
def _compiled(path: str) -> ParsedResult:
    return jmespath.compile(path)


def is_among(raw: Any, values: Sequence[str | float | bool]) -> bool:
    """``raw in values`` where true is not 1 and 1 is not true (JSON keeps booleans and numbers apart)."""
    return any(isinstance(raw, bool) == isinstance(v, bool) and raw == v for v in values)


class _Functions(functions.Functions):
    """JMESPath has no arithmetic; these two are what step checks need beyond its built-in aggregates."""

    @functions.signature({"types": ["number", "null"]}, {"types": ["number", "null"]})
    def _func_div(self, numerator: float | None, denominator: float | None) -> float | None:
        # null (absent) when either side is absent or the denominator is 0: the check then reports "missing".
        if numerator is None or not denominator:
            return None
        return numerator / denominator

    @functions.signature({"types": ["array"]}, {"types": ["string"]})
    def _func_share(self, items: list[Any], condition: str) -> float | None:
        if not items:
            return None
        test = _compiled(condition)
        return sum(1 for item in items if test.search(item, options=_OPTIONS)) / len(items)


_OPTIONS = jmespath.Options(custom_functions=_Functions())


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
    if check.op in ("in", "not_in"):
        return is_among(actual, check.values or ()) == (check.op == "in")
    assert check.value is not None  # guaranteed by Check's validator
    return COMPARISONS[check.op](actual, check.value)


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

"""Checks: path lookup, comparisons and margins, missing and non-numeric values, and validation at config load."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

import pytest

from watcher.config import WATCHER_CONFIG_FILE, Check, load_settings, step_order
from watcher.core.datadirs import SOURCE_ROOT
from watcher.errors import ConfigError
from watcher.judging.checks import CheckReport, lookup, run_checks
from watcher.judging.step_files import Companions, load_step_output

pytestmark = pytest.mark.timeout(30)

EXAMPLES = SOURCE_ROOT / "examples" / "step_outputs"
DOC: dict[str, Any] = {
    "best": {"score": 0.8, "flag": True, "name": "w96", "nan": math.nan, "nested": {"x": 1}},
    "trials": [{"score": 0.5}, {"score": 0.7, "folds": [0.1, 0.2]}],
    "zero": 0,
}


def check(path: str, op: str, value: float | None = None, **extra: Any) -> Check:
    return Check.model_validate({"path": path, "op": op, "value": value, "message": "m", **extra})


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("best.score", (True, 0.8)),
        ("trials[1].score", (True, 0.7)),
        ("trials[1].folds[0]", (True, 0.1)),
        ("trials[2].score", (False, None)),
        ("best.missing", (False, None)),
        ("best.score.deeper", (False, None)),
        ("best[0]", (False, None)),
        ("trials.score", (False, None)),
        ("zero", (True, 0)),
    ],
)
def test_lookup_follows_names_and_indexes(path: str, expected: tuple[bool, Any]) -> None:
    assert lookup(DOC, path) == expected


RECORDS: dict[str, Any] = {
    "fwd": 40,
    "rev": 20,
    "bi": 10,
    "seeds": 1000,
    "survivors": [{"score": 0.9, "mode": "constant"}, {"score": 0.2, "mode": "variable"}, {"score": 0.6}],
    "status": "complete",
    "allowed": True,
}


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("div(bi, seeds)", (True, 0.01)),  # a ratio of two fields
        ("div(bi, max([min([fwd, rev]), `1`]))", (True, 0.5)),  # the overlap ratio, guarded against 0
        ("div(bi, missing)", (False, None)),  # a ratio with an absent side is missing, not an error
        ("div(bi, `0`)", (False, None)),
        ("length(survivors)", (True, 3)),  # aggregates over an array
        ("min(survivors[*].score)", (True, 0.2)),
        ("max(survivors[*].score)", (True, 0.9)),
        ("avg(survivors[*].score)", (True, pytest.approx(1.7 / 3))),
        ("share(survivors, 'score >= `0.5`')", (True, pytest.approx(2 / 3))),  # share matching a condition
        ("share(survivors, 'mode == `\"variable\"`')", (True, pytest.approx(1 / 3))),
        ("share(`[]`, 'score > `0`')", (False, None)),
        ("min(status)", (False, None)),  # a function given the wrong type: not there
    ],
)
def test_derived_values(path: str, expected: tuple[bool, Any]) -> None:
    assert lookup(RECORDS, path) == expected


@pytest.mark.parametrize(
    ("op", "values", "passed"),
    [
        ("in", ["complete"], True),
        ("in", ["in_progress", "failed"], False),
        ("not_in", ["in_progress"], True),
        ("not_in", ["complete"], False),
    ],
)
def test_enum_checks(op: str, values: list[str], passed: bool) -> None:
    result = run_checks([check("status", op, values=values)], RECORDS).results[0]
    assert (result.passed, result.margin, result.actual) == (passed, None, "complete")
    assert f"needs {op.replace('_', ' ')} {json.dumps(values)}" in result.describe()


def test_enum_keeps_booleans_and_numbers_apart() -> None:
    assert run_checks([check("allowed", "in", values=[True])], RECORDS).all_passed
    assert not run_checks([check("allowed", "in", values=[1])], RECORDS).all_passed
    assert not run_checks([check("fwd", "in", values=[True])], RECORDS).all_passed


def test_a_check_reads_a_second_file_through_the_companion() -> None:
    files = {"survivors.json": (True, {"records": 12})}
    second = check("records", ">=", 50, file="survivors.json")
    absent = check("records", ">=", 50, file="absent.json")
    report = run_checks([second, absent], RECORDS, lambda name: files.get(name, (False, None)))
    assert [(r.status, r.actual) for r in report.results] == [("failed", 12), ("missing", None)]
    assert report.results[0].describe().startswith("FAIL hard survivors.json: records = 12")


@pytest.mark.parametrize(
    ("op", "value", "passed", "margin"),
    [
        (">=", 0.6, True, (0.8 - 0.6) / 0.6),
        (">=", 0.8, True, 0.0),
        (">", 0.8, False, 0.0),
        (">=", 0.9, False, (0.8 - 0.9) / 0.9),
        ("<=", 1.0, True, 0.2),
        ("<", 0.5, False, (0.5 - 0.8) / 0.5),
        ("==", 0.8, True, None),
        ("!=", 0.8, False, None),
        ("<=", -2.0, False, (-2.0 - 0.8) / 2.0),
    ],
)
def test_comparison_and_relative_margin(op: str, value: float, passed: bool, margin: float | None) -> None:
    result = run_checks([check("best.score", op, value)], DOC).results[0]
    assert result.passed is passed
    assert result.status == ("passed" if passed else "failed")
    assert result.actual == 0.8
    if margin is None:
        assert result.margin is None
    else:
        assert result.margin == pytest.approx(margin)


def test_between_margin_is_the_nearer_bound() -> None:
    inside = run_checks([check("best.score", "between", range=[0.5, 1.0])], DOC).results[0]
    assert inside.passed
    assert inside.margin == pytest.approx(min((0.8 - 0.5) / 0.5, (1.0 - 0.8) / 1.0))
    below = run_checks([check("best.score", "between", range=[0.9, 2.0])], DOC).results[0]
    assert not below.passed
    assert below.margin == pytest.approx((0.8 - 0.9) / 0.9)


def test_zero_threshold_uses_absolute_margin() -> None:
    result = run_checks([check("best.score", ">=", 0.0)], DOC).results[0]
    assert result.margin == pytest.approx(0.8)


def test_missing_path_is_a_failed_check_reported_as_missing() -> None:
    report = run_checks([check("best.score_std", "<=", 0.05, severity="soft")], DOC)
    (result,) = report.results
    assert (result.status, result.passed, result.actual, result.margin) == ("missing", False, None, None)
    assert report.soft_failed == ("best.score_std",)
    assert report.hard_failed == ()
    assert "best.score_std is missing" in result.describe()


@pytest.mark.parametrize(
    ("path", "shown"),
    [
        ("best.flag", True),
        ("best.name", "w96"),
        ("best.nan", "NaN"),
        ("best.nested", "<object>"),
        ("trials", "<array>"),
    ],
)
def test_value_that_is_not_a_finite_number_fails(path: str, shown: Any) -> None:
    (result,) = run_checks([check(path, ">=", 0.0)], DOC).results
    assert (result.status, result.passed, result.margin) == ("not_a_number", False, None)
    assert result.actual == shown


def test_report_lists_failures_by_severity_and_serialises() -> None:
    checks = [
        check("best.score", ">=", 0.9),
        check("zero", "==", 0),
        check("trials[0].score", ">=", 0.6, severity="soft"),
    ]
    report = run_checks(checks, DOC)
    assert report.hard_failed == ("best.score",)
    assert report.soft_failed == ("trials[0].score",)
    assert not report.all_passed
    dumped = json.loads(report.model_dump_json())
    assert dumped["hard_failed"] == ["best.score"]
    assert [r["path"] for r in dumped["results"]] == ["best.score", "zero", "trials[0].score"]
    assert CheckReport.model_validate({"results": dumped["results"]}) == report
    lines = report.lines()
    assert lines[0].startswith("FAIL hard best.score = 0.8, needs >= 0.9")
    assert lines[1] == "PASS hard zero = 0, needs == 0"


@pytest.mark.parametrize(
    ("op", "tier", "actual", "severity"),
    [
        ("<=", {"hard_limit": 0.1}, 0.04, "soft"),  # passes: keeps its configured severity
        ("<=", {"hard_limit": 0.1}, 0.08, "soft"),  # misses 0.05, inside the tier: for the model to weigh
        ("<=", {"hard_limit": 0.1}, 0.1, "soft"),  # at the hard limit is not beyond it
        ("<=", {"hard_limit": 0.1}, 0.14, "hard"),
        (">=", {"hard_limit": 0.02}, 0.03, "soft"),
        (">=", {"hard_limit": 0.02}, 0.01, "hard"),
        ("between", {"hard_range": [0.01, 0.09]}, 0.095, "hard"),
        ("between", {"hard_range": [0.01, 0.09]}, 0.085, "soft"),
        ("between", {"hard_range": [0.01, 0.09]}, 0.005, "hard"),
        ("<=", {}, 0.9, "soft"),  # no tier: a soft check fails soft however far it misses
    ],
)
def test_a_soft_failure_past_the_hard_tier_counts_as_hard(
    op: str, tier: dict[str, Any], actual: float, severity: str
) -> None:
    operand = {"range": [0.02, 0.08]} if op == "between" else {"value": 0.05 if op == "<=" else 0.04}
    spec = {"path": "x", "op": op, "severity": "soft", "message": "noisy", **operand, **tier}
    report = run_checks([Check.model_validate(spec)], {"x": actual})
    (result,) = report.results
    assert result.severity == severity
    assert report.hard_failed == (("x",) if severity == "hard" else ())
    if severity == "hard":
        assert ("hard beyond" in result.describe()) or ("hard outside" in result.describe())
        assert result.describe().startswith("FAIL hard x")


def test_a_missing_value_of_a_tiered_check_stays_a_soft_failure() -> None:
    tiered = Check.model_validate(
        {"path": "x", "op": "<=", "value": 0.05, "severity": "soft", "hard_limit": 0.1, "message": "noisy"}
    )
    for document in ({}, {"x": "n/a"}):
        report = run_checks([tiered], document)
        assert (report.soft_failed, report.hard_failed) == (("x",), ())


def test_empty_check_list_passes_vacuously() -> None:
    report = run_checks([], DOC)
    assert report.results == ()
    assert report.all_passed


def shipped_report(step: str, variant: str) -> CheckReport:
    settings = load_settings(SOURCE_ROOT / "config")
    file = EXAMPLES / f"step{step}_{variant}.json"
    source = load_step_output(settings, file, step)
    return run_checks(settings.watcher.checks[step], source.data, Companions(settings, file))


def test_every_shipped_check_finds_its_value_in_the_good_example() -> None:
    settings = load_settings(SOURCE_ROOT / "config")
    assert sorted(settings.watcher.checks, key=step_order) == sorted(settings.watcher.steps, key=step_order)
    for step, checks in settings.watcher.checks.items():
        assert any(c.severity == "hard" for c in checks), f"step {step} has no hard check"
        assert all(c.source for c in checks), f"step {step}: a shipped check without its source"
        for result in shipped_report(step, "good").results:
            assert result.passed, f"step {step}: {result.describe()}"


def test_every_shipped_bad_example_fails_a_hard_check() -> None:
    settings = load_settings(SOURCE_ROOT / "config")
    for step in settings.watcher.checks:
        assert shipped_report(step, "bad").hard_failed, f"step {step}"


# --- validation when the config loads --------------------------------------------------------------------------


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    target = tmp_path / "config"
    shutil.copytree(SOURCE_ROOT / "config", target)
    return target


def with_checks(config_dir: Path, checks: dict[str, Any]) -> None:
    path = config_dir / WATCHER_CONFIG_FILE
    data = json.loads(path.read_text())
    data["checks"] = checks
    path.write_text(json.dumps(data))


GOOD = {"path": "best.score", "op": ">=", "value": 0.6, "message": "low"}
BROKEN_CHECKS: list[tuple[str, dict[str, Any], str, str]] = [
    ("unknown step", {"9": [GOOD]}, "(top level)", "unknown step(s) 9"),
    ("bad path syntax", {"1": [{**GOOD, "path": "best..score"}]}, "checks.1[0].path", "bad JMESPath expression"),
    ("path with a dash", {"1": [{**GOOD, "path": "best-score"}]}, "checks.1[0].path", "bad JMESPath expression"),
    ("bad index", {"1": [{**GOOD, "path": "trials[0.score"}]}, "checks.1[0].path", "bad JMESPath expression"),
    ("unknown step key", {"2.x": [GOOD]}, "(top level)", "unknown step(s) 2.x"),
    ("enum without values", {"1": [{**GOOD, "op": "in", "value": None}]}, "checks.1[0]", "needs values"),
    ("bad comparator", {"1": [{**GOOD, "op": "=>"}]}, "checks.1[0].op", "'>='"),
    ("no value", {"1": [{**GOOD, "value": None}]}, "checks.1[0]", "needs a value"),
    ("between without range", {"1": [{**GOOD, "op": "between"}]}, "checks.1[0]", "needs range"),
    ("reversed range", {"1": [{**GOOD, "op": "between", "range": [2, 1]}]}, "checks.1[0]", "low <= high"),
    ("bad severity", {"1": [{**GOOD, "severity": "fatal"}]}, "checks.1[0].severity", "'hard'"),
    ("unknown key", {"1": [{**GOOD, "treshold": 1}]}, "checks.1[0].treshold", "Extra inputs"),
    ("hard tier on a hard check", {"1": [{**GOOD, "hard_limit": 0.5}]}, "checks.1[0]", "belong to soft checks"),
    (
        "hard limit on the passing side",
        {"1": [{**GOOD, "severity": "soft", "hard_limit": 0.7}]},
        "checks.1[0]",
        "hard_limit 0.7 must lie at or below value 0.6",
    ),
    (
        "hard limit on the passing side of <=",
        {"1": [{**GOOD, "op": "<=", "severity": "soft", "hard_limit": 0.5}]},
        "checks.1[0]",
        "must lie at or above value 0.6",
    ),
    (
        "hard range inside the range",
        {"1": [{**GOOD, "op": "between", "range": [0, 1], "severity": "soft", "hard_range": [0.1, 2]}]},
        "checks.1[0]",
        "hard_range [0.1, 2.0] must contain range [0.0, 1.0]",
    ),
    (
        "hard limit on between",
        {"1": [{**GOOD, "op": "between", "range": [0, 1], "severity": "soft", "hard_limit": 2}]},
        "checks.1[0]",
        "takes hard_range",
    ),
    (
        "hard range on >=",
        {"1": [{**GOOD, "severity": "soft", "hard_range": [0, 1]}]},
        "checks.1[0]",
        "hard_range belongs to op 'between'",
    ),
    ("hard limit on ==", {"1": [{**GOOD, "op": "==", "severity": "soft", "hard_limit": 1}]}, "checks.1[0]", "no side"),
]


@pytest.mark.parametrize(("label", "checks", "key_path", "rule"), BROKEN_CHECKS, ids=[b[0] for b in BROKEN_CHECKS])
def test_broken_check_names_file_key_and_rule(
    config_dir: Path, label: str, checks: dict[str, Any], key_path: str, rule: str
) -> None:
    with_checks(config_dir, checks)
    with pytest.raises(ConfigError) as caught:
        load_settings(config_dir)
    message = str(caught.value)
    assert str(config_dir / WATCHER_CONFIG_FILE) in message
    assert key_path in message
    assert rule in message


def test_valid_checks_load_in_order(config_dir: Path) -> None:
    second = {**GOOD, "path": "trials[0].score", "op": "between", "range": [0, 1], "severity": "soft"}
    with_checks(config_dir, {"1": [GOOD, second]})
    loaded = load_settings(config_dir).watcher.checks["1"]
    assert [c.path for c in loaded] == ["best.score", "trials[0].score"]
    assert loaded[1].range == (0.0, 1.0)

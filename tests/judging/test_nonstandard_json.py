"""Non-standard JSON and hostile step outputs: refused when read, failed as hard when a caller passes them anyway."""

from __future__ import annotations

import math
import os
from pathlib import Path

import pytest

from tests.support.records import evaluation_body
from tests.support.trust_fixtures import trust_settings
from watcher.config import Check, Settings
from watcher.core.atomic import atomic_write_json
from watcher.errors import InputError, RecordInvalid
from watcher.judging.checks import run_checks
from watcher.judging.records import finish_record
from watcher.judging.step_files import load_step_output

pytestmark = pytest.mark.timeout(20)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return trust_settings(tmp_path, ask_model={step: "never" for step in "123456"})


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ('{"best_window": {"score": NaN}}', "NaN is not a number in JSON"),
        ('{"best_window": {"score": Infinity}}', "Infinity is not a number in JSON"),
        ('{"best_window": {"score": -Infinity}}', "-Infinity is not a number in JSON"),
        ('{"window": ' + "9" * 5000 + "}", "Exceeds the limit"),
        ("[" * 50000 + "]" * 50000, "nested too deeply"),
        ('{"note": "\\udc00"}', "lone UTF-16 surrogate"),
    ],
    ids=["nan", "infinity", "minus-infinity", "huge-int", "deep", "surrogate"],
)
def test_a_step_output_that_is_not_standard_json_is_refused_with_the_reason(
    settings: Settings, tmp_path: Path, text: str, reason: str
) -> None:
    file = tmp_path / "out.json"
    file.write_text(text)
    with pytest.raises(InputError, match=reason.replace("(", r"\(")):
        load_step_output(settings, file, "1")


def test_a_step_output_that_became_a_fifo_is_refused_unread(settings: Settings, tmp_path: Path) -> None:
    fifo = tmp_path / "out.json"
    os.mkfifo(fifo)
    with pytest.raises(InputError, match="not a regular file: a FIFO"):
        load_step_output(settings, fifo, "1")  # O_NONBLOCK and a type check: a FIFO cannot hang the reader


def test_a_deep_document_fails_its_schema_as_an_input_error(settings: Settings, tmp_path: Path) -> None:
    file = tmp_path / "out.json"
    file.write_text('{"x": ' + "[" * 900 + "]" * 900 + "}")  # parses, and is deeper than validation can follow
    with pytest.raises(InputError):
        load_step_output(settings, file, "1")


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf], ids=["nan", "inf", "-inf"])
def test_a_metric_that_is_not_finite_fails_its_soft_check_as_hard(value: float) -> None:
    check = Check.model_validate({"path": "m", "op": ">=", "value": 0.5, "message": "m", "severity": "soft"})
    (result,) = run_checks([check], {"m": value}).results
    assert (result.passed, result.status, result.severity) == (False, "not_a_number", "hard")
    assert result.actual in ("NaN", "Infinity", "-Infinity") and "not a number" in result.describe()


def test_nan_is_never_written_into_a_decision(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not JSON compliant"):
        atomic_write_json(tmp_path / "d.json", {"confidence": math.nan})
    assert not (tmp_path / "d.json").exists()
    body = evaluation_body(tmp_path / "out.json", "1")
    body["confidence"] = math.nan
    with pytest.raises(RecordInvalid, match="cannot be written as JSON"):
        finish_record(body, request_id="r", request_type="evaluate_step", source="r.json", decided_at="now")

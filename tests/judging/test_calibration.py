"""Calibration without a model: the labelled set is read from its layout, open outputs are told from settled
ones, the summary recommends never where the model does not beat the checks, ECE, writing the config."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest

from tests.support.trust_fixtures import LABELLED, trust_settings
from watcher.judging.calibration import (
    Labelled,
    Outcome,
    expected_calibration_error,
    is_open,
    limit_open,
    load_labelled,
    measure,
    settled_sample,
    summarise,
    write_recommendations,
)
from watcher.judging.records import EvaluationRecord

pytestmark = pytest.mark.timeout(60)


def test_the_manifest_and_the_folder_layout_give_the_same_set(tmp_path: Path) -> None:
    settings = trust_settings(tmp_path)
    with_manifest = load_labelled(LABELLED, settings, ["1"])
    copy = tmp_path / "set"
    shutil.copytree(LABELLED / "step1", copy / "step1")
    from_layout = load_labelled(copy, settings)
    # Step 1's cases are folders: the step's output beside the survivors its checks read.
    assert {(i.file.relative_to(LABELLED), i.step, i.label, i.kind) for i in with_manifest} == {
        (i.file.relative_to(copy), i.step, i.label, i.kind) for i in from_layout
    }
    assert {i.label for i in from_layout} == {"good", "bad"}, "in-progress files are not judgements"


def test_settled_outputs_are_all_kept_and_open_ones_limited(tmp_path: Path) -> None:
    settings = trust_settings(tmp_path)
    items = load_labelled(LABELLED, settings)
    limited = limit_open(settings, items, 1)
    opened = [i for i in limited if is_open(settings, i)[0]]
    settled = [i for i in items if not is_open(settings, i)[0]]
    assert all(i in limited for i in settled)
    keys = [(i.step, i.label) for i in opened]
    assert len(keys) == len(set(keys)) and opened


def test_a_step_output_is_checked_with_the_files_beside_it(tmp_path: Path) -> None:
    # Step 1's survivors check reads bidirectional_survivors.json from the case folder: without it every step 1
    # output would be a hard failure, settled as retry.
    settings = trust_settings(tmp_path)
    soft = next(i for i in load_labelled(LABELLED, settings, ["1"]) if i.file.parent.name == "soft_01")
    assert is_open(settings, soft) == (True, "escalate")


def test_without_a_judge_an_open_output_gets_the_checks_alone_decision(tmp_path: Path) -> None:
    settings = trust_settings(tmp_path)
    item = next(i for i in load_labelled(LABELLED, settings) if is_open(settings, i)[0])
    outcome = measure(settings, item, None)
    assert outcome.open and outcome.decision == outcome.checks_decision and outcome.model_decision is None


def test_an_output_the_server_does_not_answer_in_time_is_an_error_not_the_end_of_the_run(tmp_path: Path) -> None:
    from watcher.errors import ServerUnavailable

    settings = trust_settings(tmp_path)
    item = next(i for i in load_labelled(LABELLED, settings) if is_open(settings, i)[0])

    def judge(labelled: Labelled) -> EvaluationRecord:
        raise ServerUnavailable("primary", "POST /completion: no answer within 180s")

    result = measure(settings, item, judge)
    assert (result.open, result.decision, result.model_decision) == (True, "error", None)


def outcome(label: str, checks: str, final: str, model: str | None, confidence: float | None) -> Outcome:
    return Outcome(Labelled(Path(f"{label}.json"), "1", label, "borderline"), True, checks, final, model, confidence)


def test_a_model_no_better_than_the_checks_is_recommended_never() -> None:
    summary = summarise(
        "1", [outcome("good", "proceed", "retry", "retry", 0.9), outcome("bad", "escalate", "retry", "retry", 0.9)]
    )
    assert (summary.checks_accuracy, summary.model_accuracy, summary.recommend) == (1.0, 0.5, "never")


def test_a_model_better_than_the_checks_without_letting_bad_through_is_recommended_borderline() -> None:
    outcomes = [
        outcome("good", "escalate", "proceed", "proceed", 0.8),
        outcome("bad", "escalate", "retry", "retry", 0.7),
    ]
    summary = summarise("1", outcomes)
    assert (summary.checks_accuracy, summary.model_accuracy, summary.recommend) == (0.5, 1.0, "borderline")
    assert summary.escalated == 0.0 and summary.bad_proceed == 0


def test_a_bad_output_that_proceeds_rules_the_model_out() -> None:
    outcomes = [
        outcome("good", "escalate", "proceed", "proceed", 0.8),
        outcome("bad", "escalate", "proceed", "proceed", 0.6),
    ]
    assert summarise("1", outcomes).recommend == "never"


def test_open_kind_outputs_are_reported_apart() -> None:
    judged = [
        dataclasses.replace(o, item=dataclasses.replace(o.item, kind="open"))
        for o in (
            outcome("good", "escalate", "proceed", "proceed", 0.8),
            outcome("bad", "escalate", "proceed", "proceed", 0.6),
        )
    ]
    summary = summarise("1", [*judged, outcome("good", "proceed", "proceed", "proceed", 0.9)])
    assert (summary.open, summary.judged, summary.judged_checks, summary.judged_model) == (3, 2, 0.5, 0.5)
    assert summary.line().endswith("      2     50%     50%  never")
    unasked = summarise("1", [dataclasses.replace(o, decision=o.checks_decision, model_decision=None) for o in judged])
    assert (unasked.judged_checks, unasked.judged_model) == (0.5, None)


def test_expected_calibration_error() -> None:
    assert expected_calibration_error([(0.9, True), (0.9, True)]) == pytest.approx(0.1)
    assert expected_calibration_error([(0.95, True), (0.95, False)]) == pytest.approx(0.45)
    assert expected_calibration_error([(None, True)]) is None


def test_recommendations_are_written_into_the_config_keeping_the_rest(tmp_path: Path) -> None:
    settings = trust_settings(tmp_path)
    file = settings.config_dir / "watcher.json"
    before = json.loads(file.read_text())
    write_recommendations(file, {"1": "never", "5": "borderline"})
    after = json.loads(file.read_text())
    assert after["steps"]["1"]["ask_model"] == "never" and after["steps"]["5"]["ask_model"] == "borderline"
    after["steps"]["1"]["ask_model"] = before["steps"]["1"]["ask_model"]
    after["steps"]["5"]["ask_model"] = before["steps"]["5"]["ask_model"]
    assert after == before


def test_a_settled_output_shown_to_the_model_keeps_the_checks_decision_and_counts_as_reading(tmp_path: Path) -> None:
    settings = trust_settings(tmp_path)
    item = next(i for i in load_labelled(LABELLED, settings, ["1"]) if i.label == "bad" and not is_open(settings, i)[0])

    def probe(labelled: Labelled) -> EvaluationRecord:
        raise AssertionError("the probe is asked for a settled output")

    with pytest.raises(AssertionError, match="the probe is asked"):
        measure(settings, item, None, probe)
    assert settled_sample(settings, [item], 1) == {item}
    said = [outcome("bad", "retry", "retry", "proceed", 0.9), outcome("good", "proceed", "proceed", "proceed", 0.9)]
    probed = [dataclasses.replace(o, open=False) for o in said]
    summary = summarise("1", probed)
    assert summary.open == 0 and summary.reading == 0.5 and summary.bad_proceed == 0


def test_the_report_orders_steps_by_number_with_a_step_between_two_others(capsys: pytest.CaptureFixture[str]) -> None:
    from watcher.commands.calibrate import report

    outcomes = [
        dataclasses.replace(
            outcome("good", "proceed", "proceed", None, None), item=Labelled(Path("x.json"), step, "good", "clear")
        )
        for step in ("3", "2.5", "10", "2")
    ]
    assert list(report(outcomes)) == ["2", "2.5", "3", "10"]
    assert "step 2.5" in capsys.readouterr().out

"""``watcher check``: the configured checks and the ask_model plan for step outputs, with no server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from watcher import cli
from watcher.core.datadirs import SOURCE_ROOT
from watcher.exitcodes import ExitCode

pytestmark = pytest.mark.timeout(60)

EXAMPLES = SOURCE_ROOT / "examples" / "step_outputs"
LABELLED = EXAMPLES / "labelled"
CONFIG = SOURCE_ROOT / "config"


@pytest.fixture(autouse=True)
def no_server(monkeypatch: pytest.MonkeyPatch) -> None:
    from watcher.llm import lifecycle

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("watcher check must not touch a server")

    monkeypatch.setattr(lifecycle, "get_lifecycle_manager", refuse)


def check(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = cli.main(["--config-dir", str(CONFIG), "check", *args])
    return code, capsys.readouterr().out


def check_json(capsys: pytest.CaptureFixture[str], *files: Path) -> tuple[int, list[dict[str, Any]]]:
    code, out = check(capsys, "--json", *map(str, files))
    return code, json.loads(out)


def test_a_clear_output_proceeds_without_the_model_and_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    code, (result,) = check_json(capsys, EXAMPLES / "step1_good.json")
    assert code == ExitCode.OK
    assert (result["step"], result["outcome"], result["rule"]) == ("1", "proceed without the model", "all_checks_clear")
    assert result["checks"]["hard_failed"] == [] and len(result["checks"]["results"]) == 6


def test_a_soft_signal_far_past_its_threshold_fails_hard_and_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = check(capsys, str(LABELLED / "step1" / "bad" / "soft_01" / "optimal_window_config.json"))
    assert code == ExitCode.FAILURE
    assert "step 1 (Window Optimizer), ask_model borderline: retry without the model" in out
    overlap = "div(bidirectional_count, max([min([forward_count, reverse_count]), `1`]))"
    assert f"FAIL hard {overlap} = 0.08, needs >= 0.25" in out and "hard beyond 0.12" in out


def test_a_narrow_pass_is_sent_to_the_model(capsys: pytest.CaptureFixture[str]) -> None:
    code, (result,) = check_json(capsys, LABELLED / "step1" / "good" / "borderline_01" / "optimal_window_config.json")
    assert code == ExitCode.OK
    assert result["outcome"] == "ask the model"
    assert result["rule"] == "borderline_check:div(bidirectional_count, seed_count)"


def test_a_check_on_the_steps_second_file_reads_it_beside_the_first(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "optimal_window_config.json").write_bytes((EXAMPLES / "step1_good.json").read_bytes())
    code, (result,) = check_json(capsys, tmp_path / "optimal_window_config.json")
    assert code == ExitCode.FAILURE  # no survivors beside it: the survivor count is missing, a hard failure
    assert result["checks"]["hard_failed"] == ["records"]
    (tmp_path / "bidirectional_survivors.json").write_bytes((EXAMPLES / "bidirectional_survivors.json").read_bytes())
    code, (result,) = check_json(capsys, tmp_path / "optimal_window_config.json")
    assert (code, result["outcome"]) == (ExitCode.OK, "proceed without the model")


def test_an_in_progress_output_is_waiting_not_judged(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = check(capsys, str(EXAMPLES / "step1_in_progress.json"), "--step", "1")
    assert code == ExitCode.INVALID_INPUT
    assert "waiting for step 1 to finish" in out


def test_a_step_key_that_is_not_an_integer_is_named_on_the_command_line(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = check(capsys, "--step", "2.5", str(EXAMPLES / "step2.5_good.json"))
    assert code == ExitCode.OK
    assert "step 2.5 (Scorer Meta-Optimizer)" in out


def test_every_file_is_reported_and_an_invalid_one_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    files = [EXAMPLES / "step3_invalid.json", EXAMPLES / "step3_bad.json", EXAMPLES / "step3_good.json"]
    code, out = check(capsys, "--step", "3", *map(str, files))
    assert code == ExitCode.INVALID_INPUT
    assert "step3_invalid.json: does not match schema step3_full_scoring.schema.json (step 3)" in out
    assert "step3_bad.json: step 3 (Full Scoring)" in out and "step3_good.json: step 3 (Full Scoring)" in out


def test_an_unknown_step_is_named(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = check(capsys, "--step", "9", str(EXAMPLES / "step1_good.json"))
    assert code == ExitCode.INVALID_INPUT
    assert "step '9' is not configured" in out

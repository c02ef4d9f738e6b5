"""The shipped checks judge the labelled step outputs (the pipeline's real formats): no bad output proceeds on the
checks alone, and an in-progress output is never judged."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from watcher.config import load_settings, step_order
from watcher.core.datadirs import SOURCE_ROOT
from watcher.judging.checks import run_checks
from watcher.judging.step_files import Companions, StepNotReady, load_step_output
from watcher.judging.verdicts import Plan, plan

pytestmark = pytest.mark.timeout(60)

LABELLED = SOURCE_ROOT / "examples" / "step_outputs" / "labelled"
SETTINGS = load_settings(SOURCE_ROOT / "config")


@dataclass(frozen=True)
class Judged:
    path: Path
    step: str
    label: str
    kind: str
    checks_only: Plan
    borderline: Plan  # the model asked about what the checks cannot settle (the shipped mode is a measured choice)


MANIFEST = json.loads((LABELLED / "manifest.json").read_text())


def judge_all() -> list[Judged]:
    judged = []
    for entry in MANIFEST:
        if entry["label"] == "in_progress":
            continue
        path, step = LABELLED / entry["file"], entry["step"]
        cfg = SETTINGS.watcher.steps[step]
        source = load_step_output(SETTINGS, path, step)
        report = run_checks(SETTINGS.watcher.checks.get(step, ()), source.data, Companions(SETTINGS, path))
        never = plan(cfg.model_copy(update={"ask_model": "never"}), report)
        borderline = plan(cfg.model_copy(update={"ask_model": "borderline"}), report)
        judged.append(Judged(path, step, entry["label"], entry["kind"], never, borderline))
    return judged


JUDGED = judge_all()


def test_every_step_has_ten_good_and_ten_bad_outputs() -> None:
    for step in SETTINGS.watcher.steps:
        for label in ("good", "bad"):
            assert sum(j.step == step and j.label == label for j in JUDGED) >= 10, (step, label)


def test_in_progress_outputs_are_never_judged() -> None:
    waiting = [LABELLED / e["file"] for e in MANIFEST if e["label"] == "in_progress"]
    assert waiting
    for path in waiting:
        with pytest.raises(StepNotReady, match="waiting for step 1 to finish"):
            load_step_output(SETTINGS, path, "1")


def name(item: Judged) -> str:
    return str(item.path.relative_to(LABELLED))


def test_no_bad_output_proceeds_on_checks_alone() -> None:
    proceeding = [name(j) for j in JUDGED if j.label == "bad" and j.checks_only.decision == "proceed"]
    assert proceeding == []


def test_clearly_good_outputs_proceed_without_the_model() -> None:
    for item in (j for j in JUDGED if j.label == "good" and j.kind == "clear"):
        assert item.checks_only.decision == "proceed", name(item)
        assert (item.borderline.ask_model, item.borderline.decision) == (False, "proceed"), name(item)


def test_clearly_bad_outputs_are_settled_without_the_model() -> None:
    for item in (j for j in JUDGED if j.label == "bad" and j.kind == "clear"):
        assert not item.borderline.ask_model, name(item)
        assert item.borderline.rule.startswith("hard_check_failed:"), name(item)
        assert item.borderline.decision == SETTINGS.watcher.steps[item.step].on_hard_failure


def test_every_bad_output_but_an_open_one_fails_a_hard_check_or_a_hard_tier() -> None:
    # Soft signals far past their threshold (fold spread 0.14 against 0.05) cross the check's hard tier, so a
    # model that calls them proceed cannot carry them through.
    for item in (j for j in JUDGED if j.label == "bad" and j.kind != "open"):
        assert item.borderline.rule.startswith("hard_check_failed:"), name(item)
        assert not item.borderline.ask_model, name(item)


def test_open_outputs_are_left_to_the_model_and_bad_ones_fail_softly() -> None:
    # Their label is a judgement (written in the manifest's note), so borderline mode asks the model; a bad one
    # fails a soft check, so with the model off (never) it escalates rather than proceeds.
    opened = [j for j in JUDGED if j.kind == "open"]
    assert {(j.step, j.label) for j in opened} >= {(s, "good") for s in SETTINGS.watcher.steps}
    for item in opened:
        assert item.borderline.ask_model, name(item)
        if item.label == "bad":
            assert item.checks_only.rule.startswith("soft_check_failed:"), name(item)
            assert item.checks_only.decision == "escalate", name(item)


def test_no_good_output_fails_a_hard_check() -> None:
    for item in (j for j in JUDGED if j.label == "good"):
        assert not item.checks_only.rule.startswith("hard_check_failed:"), name(item)


def test_soft_kind_outputs_fail_only_softly_when_good() -> None:
    for item in (j for j in JUDGED if j.label == "good" and j.kind == "soft"):
        assert item.borderline.ask_model, name(item)
        assert item.borderline.rule.startswith("soft_check_failed:"), name(item)


def test_share_of_good_outputs_that_proceed(capsys: pytest.CaptureFixture[str]) -> None:
    rows = []
    for step in sorted({j.step for j in JUDGED}, key=step_order):
        good = [j for j in JUDGED if j.step == step and j.label == "good"]
        every = [j for j in JUDGED if j.step == step]
        proceed = sum(j.checks_only.decision == "proceed" for j in good) / len(good)
        needs_model = sum(j.borderline.ask_model for j in every) / len(every)
        rows.append((step, len(good), proceed, needs_model))
    good_all = [j for j in JUDGED if j.label == "good"]
    overall = sum(j.checks_only.decision == "proceed" for j in good_all) / len(good_all)
    with capsys.disabled():
        print("\nchecks only: share of good outputs that proceed; borderline mode: share needing the model")
        for step, count, proceed, needs_model in rows:
            print(f"  step {step}: {proceed:6.1%} of {count} good proceed, {needs_model:6.1%} need the model")
        print(f"  overall: {overall:6.1%} of {len(good_all)} good proceed")
    # Soft failures and narrow passes are what the model is for; the checks alone still pass most good outputs.
    assert overall >= 0.7

"""Step-output schemas: each is a valid 2020-12 schema; good and bad examples match it, invalid ones do not."""

from __future__ import annotations

import filecmp
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from watcher.config import load_settings
from watcher.core.datadirs import SOURCE_ROOT, schema_path

pytestmark = pytest.mark.timeout(60)

EXAMPLES = SOURCE_ROOT / "examples" / "step_outputs"
LABELLED = EXAMPLES / "labelled"
STEPS = load_settings(SOURCE_ROOT / "config").watcher.steps
STEP_NUMBERS = sorted(STEPS, key=lambda step: int(str(step)))


def validator(step: str) -> Draft202012Validator:
    schema = json.loads(schema_path(STEPS[step].schema_file).read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def errors(step: str, document: Any) -> list[str]:
    return [error.message for error in validator(step).iter_errors(document)]


def load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("step", STEP_NUMBERS)
def test_schema_is_valid_and_closed(step: str) -> None:
    schema = json.loads(schema_path(STEPS[step].schema_file).read_text())
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["additionalProperties"] is False
    assert schema["properties"]["step"] == {"const": int(step), "description": f"Step number; always {step}."}


@pytest.mark.parametrize("step", STEP_NUMBERS)
@pytest.mark.parametrize("kind", ["good", "bad"])
def test_good_and_bad_examples_are_schema_valid_and_small(step: str, kind: str) -> None:
    path = EXAMPLES / f"step{step}_{kind}.json"
    assert errors(step, load(path)) == []
    assert path.stat().st_size < 4096


@pytest.mark.parametrize("step", STEP_NUMBERS)
def test_invalid_example_is_schema_invalid(step: str) -> None:
    assert errors(step, load(EXAMPLES / f"step{step}_invalid.json"))


@pytest.mark.parametrize("step", STEP_NUMBERS)
def test_schema_rejects_unknown_keys_and_wrong_step(step: str) -> None:
    good = load(EXAMPLES / f"step{step}_good.json")
    assert any("unexpected" in e for e in errors(step, {**good, "bset": {}}))
    assert errors(step, {**good, "step": int(step) % 6 + 1})


def labelled_files() -> list[Path]:
    return sorted(LABELLED.glob("step*/*/*.json"))


def test_labelled_set_has_ten_good_and_ten_bad_per_step() -> None:
    for step in STEPS:
        for label in ("good", "bad"):
            files = list((LABELLED / f"step{step}" / label).glob("*.json"))
            assert len(files) >= 10, f"step {step} {label}: {len(files)}"
            assert {f.name.split("_")[0] for f in files} >= {"clear", "borderline"}


@pytest.mark.parametrize("path", labelled_files(), ids=lambda p: str(p.relative_to(LABELLED)))
def test_labelled_file_is_schema_valid(path: Path) -> None:
    step = path.parts[-3].removeprefix("step")
    assert errors(step, load(path)) == []


def test_manifest_lists_every_labelled_file() -> None:
    manifest = load(LABELLED / "manifest.json")
    listed = {entry["file"] for entry in manifest}
    assert listed == {str(p.relative_to(LABELLED)) for p in labelled_files()}
    assert all(entry["label"] in entry["file"].split("/") for entry in manifest)


def test_generator_reproduces_the_committed_files(tmp_path: Path) -> None:
    copy = tmp_path / "step_outputs"
    (copy / "labelled").mkdir(parents=True)
    for base in EXAMPLES.glob("step*_good.json"):
        shutil.copy(base, copy / base.name)
    shutil.copy(LABELLED / "generate.py", copy / "labelled" / "generate.py")
    subprocess.run([sys.executable, str(copy / "labelled" / "generate.py")], check=True, timeout=60)
    fresh = sorted(p.relative_to(copy / "labelled") for p in (copy / "labelled").rglob("*.json"))
    committed = sorted(p.relative_to(LABELLED) for p in LABELLED.rglob("*.json"))
    assert fresh == committed
    _, mismatch, missing = filecmp.cmpfiles(copy / "labelled", LABELLED, [str(p) for p in fresh], shallow=False)
    assert (mismatch, missing) == ([], [])

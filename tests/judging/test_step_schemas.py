"""Step-output schemas, in the pipeline's real formats: each is a valid 2020-12 schema; the examples and the labelled
set validate; invalid examples are rejected with the key path; keys a schema does not name are accepted and
listed; the generator reproduces the committed files."""

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

from watcher.config import load_settings, step_order
from watcher.core.datadirs import SOURCE_ROOT, schema_path
from watcher.errors import SchemaViolation
from watcher.judging.step_files import StepNotReady, load_step_output

pytestmark = pytest.mark.timeout(120)

EXAMPLES = SOURCE_ROOT / "examples" / "step_outputs"
LABELLED = EXAMPLES / "labelled"
SETTINGS = load_settings(SOURCE_ROOT / "config")
STEPS = SETTINGS.watcher.steps
STEP_KEYS = sorted(STEPS, key=step_order)
MANIFEST: list[dict[str, Any]] = json.loads((LABELLED / "manifest.json").read_text())


def schema(step: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(schema_path(STEPS[step].schema_file).read_text())
    return loaded


@pytest.mark.parametrize("step", STEP_KEYS)
def test_schema_is_valid_and_open(step: str) -> None:
    document = schema(step)
    Draft202012Validator.check_schema(document)
    assert document["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    # The pipeline adds keys from release to release: a schema never closes an object.
    assert '"additionalProperties": false' not in json.dumps(document)
    body = document.get("items", document)
    assert body["required"], f"step {step}: a schema names the keys its judgement uses"


@pytest.mark.parametrize("step", STEP_KEYS)
@pytest.mark.parametrize("kind", ["good", "bad"])
def test_good_and_bad_examples_validate(step: str, kind: str) -> None:
    source = load_step_output(SETTINGS, EXAMPLES / f"step{step}_{kind}.json", step)
    assert source.step == step


@pytest.mark.parametrize("step", STEP_KEYS)
def test_invalid_example_is_rejected_with_the_key_path(step: str) -> None:
    with pytest.raises(SchemaViolation) as caught:
        load_step_output(SETTINGS, EXAMPLES / f"step{step}_invalid.json", step)
    assert caught.value.details and all(line.startswith("$") for line in caught.value.details)


@pytest.mark.parametrize(
    ("step", "broken", "path"),
    [
        ("1", lambda d: {k: v for k, v in d.items() if k != "seed_count"}, "$: 'seed_count' is a required"),
        ("1", lambda d: {**d, "bidirectional_count": "22915"}, "$.bidirectional_count: '22915' is not of type"),
        ("5", lambda d: {**d, "signal_quality": {**d["signal_quality"], "prediction_allowed": "yes"}},
         "$.signal_quality.prediction_allowed: 'yes' is not of type 'boolean'"),
        ("4", lambda d: {**d, "survivor_pool": {}}, "$.survivor_pool: 'max_pool_size' is a required"),
    ],
)  # fmt: skip
def test_missing_or_mistyped_required_key_names_its_path(tmp_path: Path, step: str, broken: Any, path: str) -> None:
    file = tmp_path / "out.json"
    file.write_text(json.dumps(broken(json.loads((EXAMPLES / f"step{step}_good.json").read_text()))))
    with pytest.raises(SchemaViolation) as caught:
        load_step_output(SETTINGS, file, step)
    assert any(line.startswith(path) for line in caught.value.details), caught.value.details


@pytest.mark.parametrize("step", ["1", "2.5", "5", "6"])
def test_unknown_keys_are_accepted_and_listed(tmp_path: Path, step: str) -> None:
    document = json.loads((EXAMPLES / f"step{step}_good.json").read_text())
    document["added_in_a_later_release"] = {"x": 1}
    file = tmp_path / "out.json"
    file.write_text(json.dumps(document))
    source = load_step_output(SETTINGS, file, step)
    assert "$.added_in_a_later_release" in source.unknown_keys


def test_unknown_keys_of_a_streamed_record_are_listed(tmp_path: Path) -> None:
    records = json.loads((EXAMPLES / "step2_good.json").read_text())
    records[0]["survivor_velocity"] = 0.5
    file = tmp_path / "bidirectional_survivors.json"
    file.write_text(json.dumps(records))
    assert "$[0].survivor_velocity" in load_step_output(SETTINGS, file, "2").unknown_keys


def test_the_in_progress_example_waits() -> None:
    with pytest.raises(StepNotReady, match="waiting for step 1 to finish"):
        load_step_output(SETTINGS, EXAMPLES / "step1_in_progress.json", "1")


def test_labelled_set_has_ten_good_and_ten_bad_per_step_in_varied_kinds() -> None:
    for step in STEPS:
        for label in ("good", "bad"):
            entries = [e for e in MANIFEST if e["step"] == step and e["label"] == label]
            assert len(entries) >= 10, f"step {step} {label}: {len(entries)}"
            assert len({e["kind"] for e in entries}) >= 3, f"step {step} {label}"


@pytest.mark.parametrize("entry", [e for e in MANIFEST if e["label"] != "in_progress"], ids=lambda e: str(e["file"]))
def test_labelled_file_validates(entry: dict[str, Any]) -> None:
    load_step_output(SETTINGS, LABELLED / entry["file"], entry["step"])


def test_manifest_lists_every_labelled_case() -> None:
    judged = {str(p.relative_to(LABELLED)) for p in LABELLED.rglob("*.json") if p.name != "manifest.json"}
    listed = {e["file"] for e in MANIFEST}
    companions = {f for f in judged - listed if f.endswith("/bidirectional_survivors.json")}
    assert judged - companions == listed
    assert all(e["label"] in e["file"].split("/") for e in MANIFEST)


def test_generator_reproduces_the_committed_files(tmp_path: Path) -> None:
    copy = tmp_path / "step_outputs"
    copy.mkdir()
    shutil.copy(EXAMPLES / "generate.py", copy / "generate.py")
    subprocess.run([sys.executable, str(copy / "generate.py")], check=True, timeout=60, capture_output=True)
    fresh = sorted(p.relative_to(copy) for p in copy.rglob("*.json"))
    committed = sorted(p.relative_to(EXAMPLES) for p in EXAMPLES.rglob("*.json"))
    assert fresh == committed
    _, mismatch, missing = filecmp.cmpfiles(copy, EXAMPLES, [str(p) for p in fresh], shallow=False)
    assert (mismatch, missing) == ([], [])

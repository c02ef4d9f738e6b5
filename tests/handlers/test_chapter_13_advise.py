"""``watcher advise``: diagnostics -> the model's proposals (chapter_13 grammar) -> a chapter_13 request."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from handlers import registry
from tests.support.jobs.fake_model import FakeModel
from tests.support.jobs.harness import make_settings
from watcher.cli import main
from watcher.exitcodes import ExitCode
from watcher.llm import lifecycle
from watcher.requests.validate import parse_request

REPO = Path(__file__).resolve().parents[2]
PLATEAU = REPO / "examples" / "diagnostics" / "plateau.json"
ADVICE = {
    "actions": [
        {
            "action": "adjust_parameter",
            "parameter": "learning_rate",
            "current": 0.1,
            "proposed": 0.08,
            "reason": "plateau",
        },
        {"action": "run_learning_loop", "reason": "retrain with the smaller rate"},
    ],
    "risk": "low",
    "confidence": 0.8,
    "reasoning": "validation AUC is flat",
}


@pytest.fixture(autouse=True)
def keep_logging(monkeypatch: pytest.MonkeyPatch) -> None:
    # main() points loguru at this test's captured stderr, which is closed once the test ends.
    monkeypatch.setattr("watcher.cli.configure_logging", lambda *args, **kwargs: None)


def advise(tmp_path: Path, *args: str) -> tuple[int, Any]:
    settings = make_settings(tmp_path)
    return main(["--config-dir", str(settings.config_dir), "advise", *args]), settings


@pytest.mark.timeout(60)
def test_advise_submits_the_models_proposals_as_a_chapter_13_request(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    model = FakeModel({"chapter_13": [ADVICE]})
    monkeypatch.setattr(lifecycle, "get_lifecycle_manager", lambda *args, **kwargs: model)
    code, settings = advise(tmp_path, "--diagnostics", str(PLATEAU), "--submit")
    out, err = capsys.readouterr()
    assert code == ExitCode.OK, err
    printed = json.loads(out)
    assert printed["type"] == "chapter_13" and printed["advice"] == ADVICE
    assert printed["diagnostics_file"] == str(PLATEAU) and len(printed["diagnostics_sha256"]) == 64
    spooled = settings.path("watcher_requests") / f"{printed['id']}.json"
    assert json.loads(spooled.read_text()) == printed
    assert parse_request(spooled.read_bytes(), spooled, settings, registry()).type == "chapter_13"
    prompt = model.asked[0][1]
    assert "- learning_rate = 0.1 (float; from 0.001, to 0.5" in prompt and "validation AUC flat" in prompt
    assert model.events == ["start", "stop"]  # it was not running before, so it is not left running


@pytest.mark.timeout(60)
def test_the_same_advice_on_the_same_diagnostics_gets_the_same_id(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    model = FakeModel({"chapter_13": [ADVICE]})
    monkeypatch.setattr(lifecycle, "get_lifecycle_manager", lambda *args, **kwargs: model)
    ids = []
    for _ in range(2):
        assert advise(tmp_path, "--diagnostics", str(PLATEAU))[0] == ExitCode.OK
        ids.append(json.loads(capsys.readouterr().out)["id"])
    assert ids[0] == ids[1]
    assert not (tmp_path / "watcher_requests").exists() or not list((tmp_path / "watcher_requests").glob("*.json"))


@pytest.mark.timeout(30)
def test_unreadable_diagnostics_exit_2_without_a_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    model = FakeModel({"chapter_13": [ADVICE]})
    monkeypatch.setattr(lifecycle, "get_lifecycle_manager", lambda *args, **kwargs: model)
    bad = tmp_path / "diag.json"
    bad.write_text('{"loss": [0.3, 0.2,')
    code, _ = advise(tmp_path, "--diagnostics", str(bad))
    assert code == ExitCode.INVALID_INPUT
    assert "invalid JSON at line 1" in capsys.readouterr().err
    assert model.events == []


@pytest.mark.real_server
@pytest.mark.timeout(240)
def test_advise_with_the_real_model(
    tmp_path: Path, llama_binary: Path, model_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, settings = advise(tmp_path, "--diagnostics", str(PLATEAU), "--submit")
    out, err = capsys.readouterr()
    assert code == ExitCode.OK, err
    request = json.loads(out)
    assert 1 <= len(request["advice"]["actions"]) <= 4
    assert "grammar_constrained" in err
    spooled = settings.path("watcher_requests") / f"{request['id']}.json"
    assert parse_request(spooled.read_bytes(), spooled, settings, registry()).id == request["id"]
    assert not lifecycle.get_lifecycle_manager(settings).is_healthy()

"""``watcher evaluate`` in the pipeline's own layout: its root holds config/ and the files its steps write."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.support.trust_fixtures import NoServerLease
from watcher import cli
from watcher.core.datadirs import SOURCE_ROOT
from watcher.exitcodes import ExitCode

pytestmark = pytest.mark.timeout(60)

CONFIG = SOURCE_ROOT / "config"
EXAMPLES = SOURCE_ROOT / "examples" / "step_outputs"


class StoppedLease(NoServerLease):
    """A server that is not running; the checks settle the file, so it is never started."""

    def is_healthy(self) -> bool:
        return False

    def stop(self) -> None:
        pass


@pytest.fixture(autouse=True)
def no_server(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("watcher.llm.lifecycle.get_lifecycle_manager", lambda *_args, **_kw: StoppedLease())


def test_evaluate_the_pipelines_own_file_from_its_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # The pipeline's layout: config/ in its root, step 1 writes both files there; no --step, no --config-dir.
    shutil.copytree(CONFIG, tmp_path / "config")
    (tmp_path / "optimal_window_config.json").write_bytes((EXAMPLES / "step1_good.json").read_bytes())
    (tmp_path / "bidirectional_survivors.json").write_bytes((EXAMPLES / "bidirectional_survivors.json").read_bytes())
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("WATCHER_CONFIG_DIR", raising=False)
    monkeypatch.delenv("WATCHER_ROOT", raising=False)
    code = cli.main(["evaluate", "optimal_window_config.json"])
    captured = capsys.readouterr()
    assert code == ExitCode.OK, captured.err
    record = json.loads(captured.out)
    assert (record["step"], record["decision"], record["parse_method"]) == ("1", "proceed", "checks_only")
    assert "$.agent_metadata" not in record["unknown_keys"] and "$.completed_at" in record["unknown_keys"]
    assert list((tmp_path / "watcher_decisions").glob("optimal_window_config.*.json"))


def test_an_in_progress_file_is_not_judged_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.copytree(CONFIG, tmp_path / "config")
    (tmp_path / "optimal_window_config.json").write_bytes((EXAMPLES / "step1_in_progress.json").read_bytes())
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("WATCHER_CONFIG_DIR", raising=False)
    monkeypatch.delenv("WATCHER_ROOT", raising=False)
    code = cli.main(["evaluate", "optimal_window_config.json"])
    assert code == ExitCode.INVALID_INPUT
    assert "waiting for step 1 to finish" in capsys.readouterr().err
    assert not (tmp_path / "watcher_decisions").exists()

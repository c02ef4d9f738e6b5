"""watcher calibrate end to end against a fake llama-server: the server runs on its own port with its state in a
temporary folder, each model evaluation prints its tokens and time, the table and the recommendation follow, and
--write puts the recommendation into watcher.json."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.fake_llama_server import make_fake_binary
from watcher.core.datadirs import SOURCE_ROOT

pytestmark = pytest.mark.timeout(120)


def test_calibrate_prints_per_evaluation_figures_and_writes_its_recommendation(tmp_path: Path) -> None:
    config = tmp_path / "config"
    shutil.copytree(SOURCE_ROOT / "config", config)
    llm_file = config / "llm_server_config.json"
    llm = json.loads(llm_file.read_text())
    model = tmp_path / "fake.gguf"
    model.write_bytes(b"GGUF")
    llm["servers"]["primary"].update(binary=str(make_fake_binary(tmp_path / "bin")), model_path=str(model))
    llm_file.write_text(json.dumps(llm))
    result = subprocess.run(
        [sys.executable, "-m", "watcher", "--config-dir", str(config), "calibrate", "--steps", "5", "--limit", "1",
         "--write"],
        check=False, capture_output=True, text=True, timeout=100, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    # Step 5 of the shipped set has outputs the checks leave open. The fake answers {"verdict": "yes"}, never a
    # valid decision: each open output is an error of the model.
    assert "step 5 good/" in result.stdout and ": error (model None); prompt 0 tokens, 0 cached" in result.stdout
    table = result.stdout.split("recommend ask_model\n", 1)[1]
    assert table.startswith("step 5 ") and table.splitlines()[0].endswith("never")
    written = json.loads((config / "watcher.json").read_text())
    assert written["steps"]["5"]["ask_model"] == "never"
    assert not (tmp_path / ".watcher").exists()  # the server's state went to a temporary folder

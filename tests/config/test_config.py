"""Config files: the shipped ones load; broken ones fail with one line naming the file and the key path."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from watcher.commands import schemagen
from watcher.config import LLM_CONFIG_FILE, WATCHER_CONFIG_FILE, load_settings, step_order
from watcher.core.datadirs import SOURCE_ROOT, packaged_dir
from watcher.errors import ConfigError

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    target = tmp_path / "config"
    shutil.copytree(SOURCE_ROOT / "config", target)
    return target


def edit(folder: Path, name: str, change: Callable[[dict[str, Any]], None]) -> None:
    path = folder / name
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def test_shipped_config_loads() -> None:
    settings = load_settings(SOURCE_ROOT / "config")
    primary = settings.server("primary")
    assert primary.context_length == 32768
    assert primary.host == "127.0.0.1"
    assert settings.llm.schema_version == "2.1.0"
    assert sorted(settings.watcher.steps, key=step_order) == ["1", "2", "2.5", "3", "4", "5", "6"]
    assert settings.pipeline_root == settings.root  # the folder that holds config/, unless configured
    assert settings.root == SOURCE_ROOT


def primary(data: dict[str, Any]) -> dict[str, Any]:
    server: dict[str, Any] = data["servers"]["primary"]
    return server


BROKEN_LLM: list[tuple[str, Callable[[dict[str, Any]], None], str, str]] = [
    ("wrong type", lambda d: primary(d).update(port="eighty"), "servers.primary.port", "integer"),
    ("unknown key", lambda d: primary(d).update(gpu_layer=3), "servers.primary.gpu_layer", "Extra inputs"),
    ("missing primary", lambda d: d.update(servers={"gpu1": d["servers"]["primary"]}), "servers", "primary"),
    ("port out of range", lambda d: primary(d).update(port=70000), "servers.primary.port", "65535"),
    (
        "context not positive",
        lambda d: primary(d).update(context_length=0),
        "servers.primary.context_length",
        "greater than 0",
    ),
    ("bad version", lambda d: d.update(schema_version="1.0"), "schema_version", "2.1.0"),
    ("bad server name", lambda d: d["servers"].update({"Bad Name!": {}}), "servers", "pattern"),
]


@pytest.mark.parametrize(("label", "change", "key_path", "rule"), BROKEN_LLM, ids=[b[0] for b in BROKEN_LLM])
def test_broken_llm_config_names_file_and_key(
    config_dir: Path, label: str, change: Callable[[dict[str, Any]], None], key_path: str, rule: str
) -> None:
    edit(config_dir, LLM_CONFIG_FILE, change)
    with pytest.raises(ConfigError) as caught:
        load_settings(config_dir)
    message = str(caught.value)
    assert str(config_dir / LLM_CONFIG_FILE) in message
    assert key_path in message
    assert rule in message


BROKEN_WATCHER: list[tuple[str, Callable[[dict[str, Any]], None], str, str]] = [
    ("unknown folder key", lambda d: d["folders"].update(inbox="x"), "folders.inbox", "Extra inputs"),
    ("bad limit", lambda d: d["limits"].update(max_file_bytes=-1), "limits.max_file_bytes", "greater than 0"),
    ("unknown server", lambda d: d["evaluation"].update(server="gpu9"), "evaluation.server", "gpu9"),
    ("bad ask_model", lambda d: d["steps"]["1"].update(ask_model="sometimes"), "steps.1.ask_model", "always"),
]


@pytest.mark.parametrize(("label", "change", "key_path", "rule"), BROKEN_WATCHER, ids=[b[0] for b in BROKEN_WATCHER])
def test_broken_watcher_config_names_file_and_key(
    config_dir: Path, label: str, change: Callable[[dict[str, Any]], None], key_path: str, rule: str
) -> None:
    edit(config_dir, WATCHER_CONFIG_FILE, change)
    with pytest.raises(ConfigError) as caught:
        load_settings(config_dir)
    message = str(caught.value)
    assert WATCHER_CONFIG_FILE in message
    assert key_path in message
    assert rule in message


def test_malformed_json_names_line_and_column(config_dir: Path) -> None:
    (config_dir / LLM_CONFIG_FILE).write_text('{\n  "schema_version": "2.1.0",\n  "servers": {,}\n}\n')
    with pytest.raises(ConfigError, match=r"line 3 column 15: invalid JSON"):
        load_settings(config_dir)


def test_missing_file_is_named(config_dir: Path) -> None:
    (config_dir / WATCHER_CONFIG_FILE).unlink()
    with pytest.raises(ConfigError, match=r"watcher\.json: file not found"):
        load_settings(config_dir)


def test_cli_reports_broken_config_in_one_line_without_traceback(config_dir: Path) -> None:
    edit(config_dir, LLM_CONFIG_FILE, lambda d: primary(d).update(port=0))
    result = subprocess.run(
        [sys.executable, "-m", "watcher", "--config-dir", str(config_dir), "doctor"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 3, result.stderr
    assert "Traceback" not in result.stderr
    assert f"{config_dir / LLM_CONFIG_FILE}: servers.primary.port:" in result.stderr


def test_generated_schemas_match_the_files() -> None:
    assert schemagen.drifted(packaged_dir("schemas")) == []


def test_shipped_config_files_validate_against_generated_schemas() -> None:
    import jsonschema

    for config_name, schema_name in [
        (LLM_CONFIG_FILE, "llm_server_config.schema.json"),
        (WATCHER_CONFIG_FILE, "watcher_config.schema.json"),
    ]:
        schema = json.loads((packaged_dir("schemas") / schema_name).read_text())
        document = json.loads((SOURCE_ROOT / "config" / config_name).read_text())
        jsonschema.validate(document, schema)


def test_readme_config_reference_is_current() -> None:
    from watcher.config import reference as config_reference

    readme = (SOURCE_ROOT / "README.md").read_text(encoding="utf-8")
    assert config_reference.is_current(readme), (
        "README config reference is stale: run python -m watcher.config.reference --write README.md"
    )

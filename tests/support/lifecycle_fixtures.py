"""Settings for lifecycle tests: a copy of config/ in a tmp folder, with a free port and test-sized servers."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from tests.support.helpers import free_port
from watcher.config import Settings, load_settings

REPO_CONFIG = Path(__file__).resolve().parents[2] / "config"

# Small and fast unless a test says otherwise: 4096 cells, two threads, short stop timeout.
TEST_SERVER_DEFAULTS: dict[str, Any] = {
    "context_length": 4096,
    "parallel_slots": 1,
    "threads": 2,
    "health_check_deadline_sec": 60,
    "stop_timeout_sec": 5,
    "idle_timeout_sec": 600,
}


def make_settings(tmp_path: Path, name: str = "primary", **server_overrides: Any) -> Settings:
    """Settings rooted at ``tmp_path``: server ``name`` on a free port, with ``server_overrides`` applied.

    Path values may be given as ``Path``. The root (state and log folders) is ``tmp_path``.
    """
    config_dir = tmp_path / "config"
    if not config_dir.exists():
        shutil.copytree(REPO_CONFIG, config_dir)
    llm_file = config_dir / "llm_server_config.json"
    data = json.loads(llm_file.read_text())
    server = {**data["servers"].get(name, data["servers"]["primary"]), **TEST_SERVER_DEFAULTS}
    server["port"] = free_port()
    server.update({key: str(value) if isinstance(value, Path) else value for key, value in server_overrides.items()})
    data["servers"][name] = server
    llm_file.write_text(json.dumps(data, indent=2))
    return load_settings(config_dir, root=tmp_path)

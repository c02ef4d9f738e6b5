"""Session fixtures: the provisioned llama-server and model, one shared real server, and a leak check."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.real_server import SESSION_SERVER_PIDS, DirectServer
from watcher import provision


@pytest.fixture(scope="session")
def provisioned() -> provision.InstallResult:
    # `make test` provisions first, so this is the cached path (about a second); it builds if run alone.
    return provision.install()


@pytest.fixture(scope="session")
def llama_binary(provisioned: provision.InstallResult) -> Path:
    return provisioned.binary


@pytest.fixture(scope="session")
def model_path(provisioned: provision.InstallResult) -> Path:
    return provisioned.model


@pytest.fixture(scope="session")
def llm_lease(llama_binary: Path, model_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DirectServer]:
    """One real llama-server for the whole session, for tests that need answers, not lifecycle."""
    log = tmp_path_factory.mktemp("llm_lease") / "llama-server.log"
    server = DirectServer(llama_binary, model_path, log)
    SESSION_SERVER_PIDS.add(server.process.pid)
    try:
        yield server
    finally:
        server.close()


# Every process this test session starts inherits this marker, orphans included, so the leak check counts ours
# and never a llama-server that some other program on the machine runs.
SESSION_MARKER = f"{os.getpid()}-{uuid.uuid4().hex}"
os.environ["WATCHER_TEST_SESSION"] = SESSION_MARKER


def _ours(proc: psutil.Process) -> bool:
    try:
        return proc.environ().get("WATCHER_TEST_SESSION") == SESSION_MARKER
    except (psutil.AccessDenied, psutil.NoSuchProcess, psutil.ZombieProcess):
        return False


def _llama_servers() -> set[int]:
    """Live llama-server processes of this session (zombies are dead: their memory is already back)."""
    found = set()
    for proc in psutil.process_iter(["pid", "name", "status"]):
        if proc.info["name"] == "llama-server" and proc.info["status"] != psutil.STATUS_ZOMBIE and _ours(proc):
            found.add(proc.info["pid"])
    return found - SESSION_SERVER_PIDS


@pytest.fixture(autouse=True)
def no_leaked_llama_server(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail a test that leaves a llama-server behind that it started."""
    before = _llama_servers()
    yield
    leaked = _llama_servers() - before
    if leaked and not request.node.get_closest_marker("allow_server_after"):
        pytest.fail(f"llama-server process(es) left running: {sorted(leaked)}")

"""Session fixtures: the provisioned llama-server and model, one shared real server; checks around every test:
no leaked llama-server, thread or child process, and every decision file written validates against the shipped
schema."""

from __future__ import annotations

import json
import os
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from jsonschema import Draft202012Validator

from tests.support.helpers import wait_until
from tests.support.real_server import SESSION_SERVER_PIDS, DirectServer
from watcher.core.datadirs import schema_path
from watcher.llm import provision
from watcher.llm.models import TEST_MODEL
from watcher.spool.folders import Spool

LEAK_GRACE_SEC = 5.0  # a thread or process told to stop gets this long to be gone
# Threads that live as long as the process by design: the one thread that forks llama-servers (a server's
# PR_SET_PDEATHSIG fires when the thread that forked it exits, so that thread must never exit).
PROCESS_LIFETIME_THREADS = frozenset({"llm-spawner"})
DECISION_SCHEMA = Draft202012Validator(json.loads(schema_path("decision_record.schema.json").read_text()))


@pytest.fixture(scope="session")
def provisioned() -> provision.InstallResult:
    # `make test` provisions first, so this is the cached path (about a second); it builds if run alone. The
    # small Gemma serves the real-server tests; the default judge has its own (tests/judging/test_default_judge_real).
    return provision.install(model_name=TEST_MODEL)


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


def _children() -> set[int]:
    """Live child processes of this test process (zombies are reaped by their owner later)."""
    found = set()
    for child in psutil.Process().children(recursive=True):
        try:
            if child.status() != psutil.STATUS_ZOMBIE:
                found.add(child.pid)
        except psutil.NoSuchProcess:
            continue
    return found - SESSION_SERVER_PIDS


@pytest.fixture(autouse=True)
def no_leaked_threads_or_processes(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail a test that leaves a thread or a child process (and so its process group) running."""
    threads_before = set(threading.enumerate())
    children_before = _children()
    yield
    if request.node.get_closest_marker("allow_server_after"):
        return

    def leaked_threads() -> list[threading.Thread]:
        alive = [t for t in threading.enumerate() if t not in threads_before and t.is_alive()]
        return [t for t in alive if t.name not in PROCESS_LIFETIME_THREADS]

    def leaked_children() -> set[int]:
        return _children() - children_before

    wait_until(lambda: not leaked_threads() and not leaked_children(), timeout=LEAK_GRACE_SEC)
    if threads := leaked_threads():
        pytest.fail(f"thread(s) left running: {[t.name for t in threads]}")
    if children := leaked_children():
        pytest.fail(f"child process(es) left running: {sorted(children)}")


def _schema_problems(file: Path, record: object) -> list[str]:
    return [f"{file}: {error.json_path}: {error.message}" for error in DECISION_SCHEMA.iter_errors(record)]


@pytest.fixture(autouse=True)
def decisions_match_the_shipped_schema(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """Every decision a daemon of this test wrote validates against schemas/decision_record.schema.json: the ones
    written in this process as they are written, and the files of subprocess daemons found in the test's folder."""
    problems: list[str] = []
    write_decision = Spool.write_decision

    def checked(self: Spool, request_id: str, record: dict[str, object]) -> Path:
        target = write_decision(self, request_id, record)
        problems.extend(_schema_problems(target, record))
        return target

    monkeypatch.setattr(Spool, "write_decision", checked)
    yield
    tmp_path = request.node.funcargs.get("tmp_path")
    if isinstance(tmp_path, Path):
        for file in tmp_path.rglob("watcher_decisions/*.json"):
            problems.extend(_schema_problems(file, json.loads(file.read_text())))
    if problems:
        pytest.fail("decision records that break the schema:\n" + "\n".join(dict.fromkeys(problems)))

"""Faults of the installation, injected into a running daemon: a grammar removed, a model path changed, a config
broken then fixed, a record our code cannot build. No request is rejected for them; the fault is logged once and
shown in status.json, the metrics and STATUS=; once it is fixed, every waiting request is decided by itself."""

from __future__ import annotations

import json
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from loguru import logger

from tests.support.daemon_fakes import FakeJudge, count_json, drop, folders, request, running_daemon, write_config
from tests.support.helpers import wait_until
from watcher.commands import status
from watcher.config import Settings, load_settings
from watcher.core.datadirs import grammar_dir
from watcher.daemon import scheduler as dispatch
from watcher.daemon.sdnotify import Notifier
from watcher.grammars import loader
from watcher.grammars.loader import GRAMMAR_FILES, grammar_for_step, load_grammar
from watcher.llm.provision import resolve_model

pytestmark = pytest.mark.timeout(60)
REQUESTS = 5


class Systemd:
    """The notify socket: collects what the daemon tells systemd."""

    def __init__(self, folder: Path) -> None:
        self.address = folder / "notify.sock"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(self.address))
        self.sock.settimeout(0.05)
        self.messages: list[str] = []

    def received(self) -> list[str]:
        while True:
            try:
                self.messages.append(self.sock.recv(65536).decode())
            except TimeoutError:
                return self.messages

    def saw(self, text: str) -> bool:
        return any(text in message for message in self.received())


@pytest.fixture
def systemd(tmp_path: Path) -> Iterator[Systemd]:
    listener = Systemd(tmp_path)
    yield listener
    listener.sock.close()


@pytest.fixture
def log() -> Iterator[list[str]]:
    lines: list[str] = []
    sink = logger.add(lambda message: lines.append(str(message)), level="INFO", format="{message}")
    yield lines
    logger.remove(sink)


def drop_requests(root: Path, prefix: str) -> None:
    for i in range(REQUESTS):
        drop(folders(root)["requests"], f"{prefix}{i}.json", request(f"{prefix}{i}"))


def waiting(daemon: Any, count: int) -> bool:
    faults = daemon.scheduler.faults.report()
    return bool(faults) and sum(f["waiting"] for f in faults) + daemon.slots.active >= count


def assert_fault_shown(root: Path, daemon: Any, systemd: Systemd, kind: str, text: str) -> None:
    state = root / ".watcher"
    assert wait_until(lambda: systemd.saw(f"STATUS=FAULT {kind}: "), timeout=10)
    assert wait_until(lambda: text in json.dumps(json.loads((state / "status.json").read_text())["faults"]), 10)
    metrics = (state / "watcher.prom").read_text()
    assert "watcher_installation_faults 1" in metrics, metrics


def all_decided(root: Path, prefix: str) -> bool:
    """Decided and archived (the decision is written first, the request leaves processing/ after it)."""
    f = folders(root)
    names = [f"{prefix}{i}.json" for i in range(REQUESTS)]
    return all((f["decisions"] / n).exists() and (f["requests"] / "done" / n).exists() for n in names)


def assert_nothing_rejected_or_left(root: Path, daemon: Any) -> None:
    f = folders(root)
    assert not any(f["rejected"].iterdir()) and count_json(f["requests"]) == 0
    assert not any((f["requests"] / "processing").iterdir())
    assert daemon.scheduler.faults.report() == [] and daemon.metrics.outcomes["rejected"] == 0


class GrammarJudge(FakeJudge):
    """Reads the step's grammar as the evaluator does before it asks the model."""

    def __init__(self, settings: Settings) -> None:
        super().__init__()
        self.settings = settings

    def judge(self, file: Path, step: str | None = None, *, request_id: str | None = None) -> dict[str, Any]:
        load_grammar(grammar_for_step(self.settings, step or "1"))
        return super().judge(file, step, request_id=request_id)


def test_a_removed_grammar_keeps_requests_waiting_until_it_is_back(
    root: Path, systemd: Systemd, log: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    grammars = root / "grammars"
    shutil.copytree(grammar_dir(), grammars)
    monkeypatch.setattr(loader, "grammar_dir", lambda: grammars)
    settings = load_settings(write_config(root), root)
    grammar = grammars / GRAMMAR_FILES[grammar_for_step(settings, "1")]
    grammar.rename(grammar.with_suffix(".away"))
    with running_daemon(settings, GrammarJudge(settings), notifier=Notifier(str(systemd.address))) as daemon:
        drop_requests(root, "g")
        assert wait_until(lambda: waiting(daemon, REQUESTS), timeout=10)
        assert_fault_shown(root, daemon, systemd, "GrammarError", "cannot read grammar")
        assert wait_until(lambda: "FAULT:   GrammarError: " in status.render(status.collect(settings)), timeout=10)
        assert wait_until(lambda: daemon.scheduler.faults.report()[0]["waiting"] == REQUESTS, timeout=10)
        grammar.with_suffix(".away").rename(grammar)  # fixed: the next rescan's probe gets through
        assert wait_until(lambda: all_decided(root, "g"), timeout=15)
        assert_nothing_rejected_or_left(root, daemon)
        assert wait_until(lambda: "FAULT" not in systemd.received()[-1], timeout=10)  # STATUS= without it
    assert sum("installation fault (GrammarError)" in line for line in log) == 1  # once, not per request or probe
    assert sum("installation fault cleared" in line for line in log) == 1


class ModelJudge(FakeJudge):
    """Resolves the configured model as the lifecycle does before it starts a server."""

    def __init__(self, settings: Settings) -> None:
        super().__init__()
        self.settings = settings

    def judge(self, file: Path, step: str | None = None, *, request_id: str | None = None) -> dict[str, Any]:
        resolve_model(self.settings.server(), self.settings.root)
        return super().judge(file, step, request_id=request_id)


def set_model_path(config: Path, model: Path) -> None:
    data = json.loads((config / "llm_server_config.json").read_text())
    data["servers"]["primary"]["model_path"] = str(model)
    (config / "llm_server_config.json").write_text(json.dumps(data))


def test_a_model_path_changed_waits_and_resumes_after_sighup(root: Path, systemd: Systemd) -> None:
    config = write_config(root)
    model = root / "models" / "a.gguf"
    model.parent.mkdir()
    model.write_bytes(b"GGUF")
    set_model_path(config, model)
    settings = load_settings(config, root)
    notifier = Notifier(str(systemd.address))
    options: dict[str, Any] = {"reload": lambda: load_settings(config, root), "judge_factory": ModelJudge}
    with running_daemon(settings, ModelJudge(settings), notifier=notifier, **options) as daemon:
        moved = model.rename(root / "models" / "b.gguf")  # the model moved away
        drop_requests(root, "m")
        assert wait_until(lambda: waiting(daemon, REQUESTS), timeout=10)
        assert_fault_shown(root, daemon, systemd, "ModelNotFound", str(model))
        set_model_path(config, moved)  # the config follows; SIGHUP
        daemon.flags.reload = True
        daemon.waker.set()
        assert wait_until(lambda: all_decided(root, "m"), timeout=10)
        assert_nothing_rejected_or_left(root, daemon)
    reload = [m for m in systemd.received() if "RELOADING=1" in m]
    assert reload and "MONOTONIC_USEC=" in reload[0]
    after = systemd.messages[systemd.messages.index(reload[0]) + 1 :]
    assert any(m.startswith("READY=1") for m in after)


def test_a_broken_config_is_kept_out_and_shown_until_fixed(root: Path, systemd: Systemd) -> None:
    config = write_config(root)
    good = (config / "watcher.json").read_text()
    judge = FakeJudge()
    reload = {"reload": lambda: load_settings(config, root)}
    with running_daemon(load_settings(config, root), judge, notifier=Notifier(str(systemd.address)), **reload) as d:
        (config / "watcher.json").write_text(good[: len(good) // 2])  # a half-saved edit
        d.flags.reload = True
        d.waker.set()
        assert wait_until(lambda: systemd.saw("READY=1\nSTATUS=FAULT ConfigError: config not reloaded"), 10)
        drop_requests(root, "c")  # the running config stays in force: work goes on
        assert wait_until(lambda: all_decided(root, "c"), timeout=10)
        assert any("config not reloaded" in f["message"] for f in d.scheduler.faults.report())
        (config / "watcher.json").write_text(good)
        d.flags.reload = True
        d.waker.set()
        assert wait_until(lambda: not d.scheduler.faults.report(), timeout=10)
        assert_nothing_rejected_or_left(root, d)
    assert systemd.received()[-2].startswith("READY=1\nSTATUS=queue")  # before STOPPING=1


class BrokenRecordJudge(FakeJudge):
    """A judge whose records break the decision record model until ``fixed``: a bug of ours, not the request's."""

    fixed = False

    def judge(self, file: Path, step: str | None = None, *, request_id: str | None = None) -> dict[str, Any]:
        body = super().judge(file, step, request_id=request_id)
        return body if self.fixed else {**body, "confidence": float("nan")}


def test_a_record_that_breaks_its_model_is_not_blamed_on_the_request(root: Path, log: list[str]) -> None:
    judge = BrokenRecordJudge()
    with running_daemon(load_settings(write_config(root), root), judge) as daemon:
        drop_requests(root, "r")
        assert wait_until(lambda: waiting(daemon, REQUESTS), timeout=10)
        assert daemon.scheduler.faults.report()[0]["kind"] == "RecordInvalid"
        judge.fixed = True
        assert wait_until(lambda: all_decided(root, "r"), timeout=15)
        assert_nothing_rejected_or_left(root, daemon)
    assert sum("installation fault (RecordInvalid)" in line for line in log) == 1


class BuggyJudge(FakeJudge):
    def judge(self, file: Path, step: str | None = None, *, request_id: str | None = None) -> dict[str, Any]:
        raise KeyError("a bug")


def test_an_unknown_handler_exception_is_retried_a_bounded_number_of_times(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dispatch, "RETRY_BASE_SEC", 0.01)
    monkeypatch.setattr(dispatch, "IO_RETRY_LIMIT", 3)
    with running_daemon(load_settings(write_config(root), root), BuggyJudge()):
        drop(folders(root)["requests"], "bug.json", request("bug"))
        error = folders(root)["rejected"] / "bug.json.error.json"
        assert wait_until(error.exists, timeout=10)
    assert "gave up after 3 attempts: handler failed: KeyError" in json.loads(error.read_text())["rule"]

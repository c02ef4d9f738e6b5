"""The daemon in this process with a fast fake judge: bursts, duplicates, bad input, step outputs, slow writers."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.support.daemon_fakes import (
    FakeJudge,
    FakeLifecycle,
    count_json,
    drop,
    folders,
    request,
    running_daemon,
    write_config,
)
from tests.support.helpers import wait_until
from tests.support.records import evaluation_body
from watcher.config import Settings, load_settings
from watcher.core.ids import content_id
from watcher.daemon import scheduler as dispatch
from watcher.errors import ServerUnavailable

pytestmark = pytest.mark.timeout(90)


def settings_for(root: Path, **options: object) -> Settings:
    return load_settings(write_config(root, **options), root)  # type: ignore[arg-type]


def test_a_burst_of_1000_files_gets_exactly_1000_decisions(root: Path) -> None:
    judge = FakeJudge()
    f = folders(root)
    with running_daemon(settings_for(root), judge):
        for i in range(1000):
            drop(f["requests"], f"r{i:04}.json", request(f"r{i:04}"))
        assert wait_until(lambda: count_json(f["done"]) == 1000, timeout=60)
    expected = {f"r{i:04}" for i in range(1000)}
    assert {p.stem for p in f["decisions"].iterdir()} == expected
    assert set(judge.calls) == expected and set(judge.calls.values()) == {1}
    assert count_json(f["requests"]) == 0 and not any(f["processing"].iterdir())
    record = json.loads((f["decisions"] / "r0042.json").read_text())
    assert record["request_id"] == "r0042" and record["decision"] == "proceed" and record["source"] == "r0042.json"


def test_files_present_before_start_and_claimed_files_are_finished(root: Path) -> None:
    f = folders(root)
    f["processing"].mkdir(parents=True)
    f["decisions"].mkdir()
    (f["requests"] / "waiting.json").write_bytes(request("waiting"))
    (f["processing"] / "claimed.json").write_bytes(request("claimed"))
    (f["processing"] / "decided.json").write_bytes(request("decided"))
    earlier = json.dumps(evaluation_body(f["processing"] / "decided.json", "1"))
    (f["decisions"] / "decided.json").write_text(earlier)  # crashed before the archive
    judge = FakeJudge()
    with running_daemon(settings_for(root), judge):
        assert wait_until(lambda: count_json(f["done"]) == 3, timeout=10)
    assert sorted(judge.calls) == ["claimed", "waiting"]
    assert sorted(p.name for p in f["done"].iterdir()) == ["claimed.json", "decided.json", "waiting.json"]
    assert (f["decisions"] / "decided.json").read_text() == earlier


def test_a_second_submission_of_a_decided_id_is_archived_as_duplicate(root: Path) -> None:
    f = folders(root)
    judge = FakeJudge()
    with running_daemon(settings_for(root), judge):
        drop(f["requests"], "one.json", request("same-id"))
        assert wait_until(lambda: count_json(f["done"]) == 1, timeout=10)
        drop(f["requests"], "two.json", request("same-id"))
        drop(f["requests"], "three.json", request())
        drop(f["requests"], "four.json", request())  # same content, no id: same content hash
        assert wait_until(lambda: count_json(f["done"]) == 4, timeout=10)
    assert judge.calls == {"same-id": 1, content_id(request()): 1}
    names = sorted(p.name for p in f["done"].iterdir())
    assert "two.duplicate.json" in names and sum("duplicate" in n for n in names) == 2


def test_the_same_id_twice_at_once_is_judged_once(root: Path) -> None:
    f = folders(root)
    judge = FakeJudge()
    judge.gate = threading.Event()
    with running_daemon(settings_for(root), judge) as daemon:
        drop(f["requests"], "a.json", request("twin"))
        assert wait_until(lambda: daemon.scheduler.inflight, timeout=10)
        drop(f["requests"], "b.json", request("twin"))
        assert wait_until(lambda: daemon.scheduler.held.get("twin"), timeout=10)
        judge.gate.set()
        assert wait_until(lambda: count_json(f["done"]) == 2, timeout=10)
    assert judge.calls == {"twin": 1}


BAD_INPUTS: dict[str, tuple[bytes | None, str]] = {
    "malformed.json": (b'{"type": "evaluate_step",\n  "file": }', "invalid JSON at line 2 column 11"),
    "truncated.json": (b'{"type": "evaluate_step", "file": "pipeline_out', "invalid JSON at line 1"),
    "empty.json": (b"", "empty file"),
    "huge.json": (b'{"type": "evaluate_step", "pad": "' + b"x" * 70000 + b'"}', "over limits.max_file_bytes"),
    "binary.json": (bytes(range(256)) * 4, "not UTF-8"),
    "array.json": (b"[1, 2, 3]", "expected a JSON object"),
    "wrong_schema.json": (b'{"type": "evaluate_step", "step": 1, "file": 5, "extra": true}', "does not match"),
    "unknown_type.json": (b'{"type": "launch_rockets"}', "unknown request type 'launch_rockets'"),
    "escape.json": (request(file="../../../etc/passwd"), "leads outside"),
    "linked_escape.json": (request(file="pipeline_outputs/linked.json"), "leads outside"),  # a symlink out
    "bad_id.json": (request("../../x"), "does not match schema"),
    "unknown_step.json": (request(step="9"), "step '9' is not configured"),
    "missing_output.json": (request(file="pipeline_outputs/nothing.json"), "step output file not found"),
    "dir.json": (None, "not a regular file: a directory"),
    "link.json": (None, "not a regular file: a symlink"),
    "fifo.json": (None, "not a regular file: a FIFO"),
}


def test_bad_input_corpus_is_rejected_with_reasons_and_the_daemon_lives_on(root: Path, tmp_path: Path) -> None:
    f = folders(root)
    secret = tmp_path / "outside_secret.json"
    secret.write_text('{"type": "evaluate_step", "file": "pipeline_outputs/step1.json"}')
    judge = FakeJudge()
    (root / "pipeline_outputs").mkdir(exist_ok=True)  # before the requests that name it, however slow the test
    (root / "pipeline_outputs" / "linked.json").symlink_to("/etc/hostname")
    with running_daemon(settings_for(root, grace=0.3), judge):
        for name, (data, _) in BAD_INPUTS.items():
            if data is not None:
                (f["requests"] / name).write_bytes(data)  # written in place, as careless producers do
        (f["requests"] / "dir.json").mkdir()
        (f["requests"] / "link.json").symlink_to(secret)
        os.mkfifo(f["requests"] / "fifo.json")
        assert wait_until(lambda: count_json(f["rejected"]) == len(BAD_INPUTS), timeout=20)
        drop(f["requests"], "good.json", request("still-alive"))
        assert wait_until((f["decisions"] / "still-alive.json").exists, timeout=10)
    for name, (_, reason) in BAD_INPUTS.items():
        error = json.loads((f["rejected"] / f"{name}.error.json").read_text())
        assert reason in error["rule"] + " ".join(error["details"]), (name, error)
    assert (f["rejected"] / "link.json").is_symlink() and secret.is_file()
    assert (f["rejected"] / "dir.json").is_dir()
    assert count_json(f["requests"]) == 0 and count_json(f["decisions"]) == 1 and judge.calls == {"still-alive": 1}


@pytest.mark.parametrize("reopen", [False, True], ids=["one-handle", "reopen-per-piece"])
def test_a_request_written_in_pieces_over_2s_is_processed_once_complete(root: Path, reopen: bool) -> None:
    f = folders(root)
    data = request("slow", metadata={"note": "n" * 400, "last": "complete"})
    pieces = [data[i : i + len(data) // 8 + 1] for i in range(0, len(data), len(data) // 8 + 1)]
    judge = FakeJudge()
    stop_writing = threading.Event()
    with running_daemon(settings_for(root, settle=0.2, grace=0.6), judge):
        target = f["requests"] / "slow.json"
        handle = target.open("wb")
        for piece in pieces:
            if reopen:
                handle.close()
                handle = target.open("ab")
            handle.write(piece)
            handle.flush()
            stop_writing.wait(2.0 / len(pieces))  # the producer's pace, not a synchronisation
        handle.close()
        assert wait_until(lambda: count_json(f["done"]) == 1, timeout=10)
    record = json.loads((f["decisions"] / "slow.json").read_text())
    assert record["metadata"]["last"] == "complete"
    assert judge.calls == {"slow": 1} and count_json(f["rejected"]) == 0


def test_step_outputs_are_judged_once_per_content(root: Path) -> None:
    f = folders(root)
    judge = FakeJudge()
    output = root / "pipeline_outputs" / "step1.json"
    output.parent.mkdir()
    output.write_text('{"window": 12}')
    nested = root / "pipeline_outputs" / "runs" / "7" / "step2.json"
    first_id = f"step1-{content_id(output.read_bytes())}"
    with running_daemon(settings_for(root), judge) as daemon:
        assert wait_until((f["decisions"] / f"{first_id}.json").exists, timeout=10)
        output.write_text('{"window": 12}')  # rewritten, same content
        assert wait_until(lambda: daemon.metrics.outcomes["unchanged"] >= 1, timeout=10)
        output.write_text('{"window": 13}')
        nested.parent.mkdir(parents=True)
        nested.write_text('{"survivors": 5}')
        assert wait_until(lambda: len(judge.calls) == 3, timeout=10)
        output.write_text("{not json")
        assert wait_until(lambda: count_json(f["rejected"]) == 0 and any(f["rejected"].iterdir()), timeout=10)
    assert set(judge.calls.values()) == {1}
    assert f"step2-{content_id(nested.read_bytes())}" in judge.calls
    record = json.loads((f["decisions"] / f"{first_id}.json").read_text())
    assert record["step"] == "1" and record["request_type"] == "evaluate_step"
    [error] = list(f["rejected"].iterdir())
    assert "invalid JSON" in json.loads(error.read_text())["rule"] and output.exists()


def test_seen_outputs_survive_a_restart(root: Path) -> None:
    (root / "pipeline_outputs").mkdir()
    (root / "pipeline_outputs" / "step1.json").write_text('{"window": 12}')
    judge = FakeJudge()
    with running_daemon(settings_for(root), judge):
        assert wait_until(lambda: len(judge.calls) == 1, timeout=10)
    (root / "watcher_decisions").rename(root / "old_decisions")  # only the seen-hash file remembers now
    judge_again = FakeJudge()
    with running_daemon(settings_for(root), judge_again) as daemon:
        assert wait_until(lambda: daemon.metrics.outcomes["unchanged"] >= 1, timeout=10)
    assert not judge_again.calls


def test_the_loop_ticks_the_idle_check_and_stops_the_server_at_shutdown(root: Path) -> None:
    lifecycle = FakeLifecycle()
    with running_daemon(settings_for(root), FakeJudge(), lifecycle):
        drop(root / "watcher_requests", "r.json", request("r"))
        assert wait_until(lambda: lifecycle.idle_checks >= 2, timeout=5)
        assert wait_until((root / "watcher_decisions" / "r.json").exists, timeout=5)
        assert lifecycle.stops == 0
    assert lifecycle.stops == 1
    status = json.loads((root / ".watcher" / "status.json").read_text())
    assert status["state"] == "stopped" and status["server"]["state"] == "stopped"
    metrics = (root / ".watcher" / "watcher.prom").read_text()
    assert 'watcher_requests_total{outcome="decided"} 1' in metrics
    assert "watcher_llm_server_stops_total 1" in metrics and "watcher_evaluation_seconds_count 1" in metrics


def test_polling_observer_and_lost_events_are_covered_by_the_rescan(root: Path) -> None:
    f = folders(root)
    judge = FakeJudge()
    with running_daemon(settings_for(root, polling=True, rescan=0.5), judge) as daemon:
        daemon.intake.stop()  # every event lost from now on: only the rescan can find these
        for i in range(20):
            drop(f["requests"], f"p{i}.json", request(f"p{i}"))
        assert wait_until(lambda: count_json(f["done"]) == 20, timeout=15)
    assert len(judge.calls) == 20


def test_reload_applies_a_new_step_glob(root: Path) -> None:
    config = write_config(root)
    judge = FakeJudge()

    def reload() -> Settings:
        data = json.loads((config / "watcher.json").read_text())
        data["steps"]["1"]["output_glob"] = "elsewhere/s1.json"
        (config / "watcher.json").write_text(json.dumps(data))
        return load_settings(config, root)

    with running_daemon(load_settings(config, root), judge, reload=reload) as daemon:
        daemon.flags.reload = True
        daemon.waker.set()
        assert wait_until(lambda: daemon.settings.watcher.steps["1"].output_glob == "elsewhere/s1.json", 5)
        (root / "elsewhere").mkdir(exist_ok=True)
        (root / "elsewhere" / "s1.json").write_text('{"moved": true}')
        assert wait_until(lambda: any(k.startswith("step1-") for k in judge.calls), timeout=10)


class FlakyServerJudge(FakeJudge):
    """The server is unavailable for the first ``failures`` judgements."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    def judge(self, file: Path, step: str | None = None, *, request_id: str | None = None) -> dict[str, object]:
        if self.failures > 0:
            self.failures -= 1
            raise ServerUnavailable("primary", "connection refused")
        return super().judge(file, step, request_id=request_id)


def test_an_unavailable_server_means_retry_later_not_reject(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dispatch, "RETRY_BASE_SEC", 0.05)
    f = folders(root)
    judge = FlakyServerJudge(failures=3)
    with running_daemon(settings_for(root), judge) as daemon:
        drop(f["requests"], "r.json", request("patient"))
        drop(f["requests"], "r2.json", request("patient"))  # a duplicate waits while the first is retried
        assert wait_until(lambda: count_json(f["done"]) == 2, timeout=10)
        assert daemon.metrics.outcomes["decided"] == 1 and daemon.metrics.outcomes["duplicate"] == 1
    assert judge.calls == {"patient": 1} and judge.failures == 0 and count_json(f["rejected"]) == 0


def test_an_idle_daemon_ticks_slowly_and_a_running_server_brings_back_the_short_tick(root: Path) -> None:
    from watcher.daemon.loop import QUIET_TICK_SEC, TICK_SEC, Daemon

    class ServerLifecycle(FakeLifecycle):
        idle_left: float | None = None  # None: no server whose idle stop is pending

        def idle_seconds_left(self) -> float | None:
            return self.idle_left

        def status(self) -> dict[str, Any]:
            return {"state": "stopped" if self.idle_left is None else "running", "startups": 1, "pid": None}

    lifecycle = ServerLifecycle()
    daemon = Daemon(settings_for(root, rescan=3600), FakeJudge(), lifecycle)
    daemon.spool.ensure()
    now = 1000.0  # loop_once takes the time it runs at, so the test sets the clock
    daemon.loop_once(now)  # the first tick, with nothing to do
    daemon.loop_once(now + TICK_SEC)
    daemon.loop_once(now + QUIET_TICK_SEC - 0.1)
    assert lifecycle.idle_checks == 1

    lifecycle.idle_left = 120.0  # a server was started and now waits for its idle stop
    daemon.loop_once(now + QUIET_TICK_SEC)
    daemon.loop_once(now + QUIET_TICK_SEC + TICK_SEC)
    assert lifecycle.idle_checks == 3

    status_file = root / ".watcher" / "status.json"
    assert json.loads(status_file.read_text())["server"]["state"] == "running"

    lifecycle.idle_left = None  # stopped: back to the slow tick
    daemon.loop_once(now + QUIET_TICK_SEC + 2 * TICK_SEC)
    assert json.loads(status_file.read_text())["server"]["state"] == "stopped"  # at once, not 30 s later
    daemon.loop_once(now + QUIET_TICK_SEC + 3 * TICK_SEC)
    assert lifecycle.idle_checks == 4


def test_a_stop_signal_during_start_up_stops_it_cleanly_once_started(root: Path) -> None:
    import signal

    from watcher.daemon.loop import Daemon

    lifecycle = FakeLifecycle()
    daemon = Daemon(settings_for(root), FakeJudge(), lifecycle)
    recover = daemon.scheduler.recover

    def signalled_while_starting() -> int:
        os.kill(os.getpid(), signal.SIGTERM)  # default action: the process would end here, with no status written
        return recover()

    daemon.scheduler.recover = signalled_while_starting  # type: ignore[method-assign]
    previous = signal.getsignal(signal.SIGTERM)
    assert daemon.run() == 0
    assert signal.getsignal(signal.SIGTERM) == previous  # handed back
    assert json.loads((root / ".watcher" / "status.json").read_text())["state"] == "stopped"
    assert lifecycle.stops == 1


def test_reload_says_that_concurrency_and_cpu_changes_wait_for_a_restart(root: Path) -> None:
    from loguru import logger

    config = write_config(root)
    lines: list[str] = []
    sink = logger.add(lambda m: lines.append(m.record["message"]), level="WARNING", format="{message}")

    def reload() -> Settings:
        return load_settings(write_config(root, workers=3, cpu="any"), root)

    try:
        with running_daemon(load_settings(config, root), FakeJudge(), reload=reload) as daemon:
            daemon.flags.reload = True
            daemon.waker.set()
            assert wait_until(lambda: daemon.settings.watcher.limits.cpu == "any", timeout=5)
            assert daemon.workers == 2
    finally:
        logger.remove(sink)
    assert any("concurrency changes take effect on restart" in line for line in lines)
    assert any("limits.cpu changes take effect on restart" in line for line in lines)

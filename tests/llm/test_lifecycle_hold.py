"""held_stopped(): a GPU job gets the server stopped and kept stopped, without cutting an evaluation short."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.fake_llama_server import make_fake_binary
from tests.support.helpers import wait_until
from tests.support.lifecycle_fixtures import make_settings
from watcher.errors import LLMServerError
from watcher.llm.lifecycle import LLMLifecycleManager
from watcher.llm.process import port_listening

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def mgr(tmp_path: Path) -> Iterator[LLMLifecycleManager]:
    model = tmp_path / "fake.gguf"
    model.write_bytes(b"GGUF" + b"\0" * 64)
    binary = make_fake_binary(tmp_path / "bin", "normal")
    manager = LLMLifecycleManager(make_settings(tmp_path, binary=binary, model_path=model))
    yield manager
    manager.stop(timeout_sec=1)


def test_hold_waits_for_the_evaluation_in_flight_then_stops(mgr: LLMLifecycleManager) -> None:
    evaluation_may_end = threading.Event()
    in_flight = threading.Event()
    order: list[str] = []
    listening_during_job: list[bool] = []

    def evaluation() -> None:
        with mgr.in_use():
            mgr.ensure_running()
            in_flight.set()
            evaluation_may_end.wait(10)
            order.append("evaluation ended")

    def gpu_job() -> None:
        with mgr.held_stopped() as report:
            order.append(f"job ran, server stopped={report.stopped}")
            # Observed here, asserted on the test's thread: an assert on this thread would only print.
            listening_during_job.append(port_listening("127.0.0.1", mgr.config.port))

    worker = threading.Thread(target=evaluation)
    worker.start()
    assert in_flight.wait(20)
    job = threading.Thread(target=gpu_job)
    job.start()
    job.join(0.3)
    assert job.is_alive(), "the hold must wait for the evaluation in flight"
    evaluation_may_end.set()
    worker.join(10)
    job.join(20)
    assert order == ["evaluation ended", "job ran, server stopped=True"]
    assert listening_during_job == [False], "the job must run with the server's port closed"


def test_no_thread_can_start_the_server_while_it_is_held(mgr: LLMLifecycleManager) -> None:
    mgr.ensure_running()
    release = threading.Event()
    held = threading.Event()
    started_during_hold: list[bool] = []

    def gpu_job() -> None:
        with mgr.held_stopped():
            held.set()
            release.wait(10)
            started_during_hold.append(port_listening("127.0.0.1", mgr.config.port))

    def evaluation() -> None:
        with mgr.in_use():
            mgr.ensure_running()

    job = threading.Thread(target=gpu_job)
    job.start()
    assert held.wait(20)
    waiting = threading.Thread(target=evaluation)
    waiting.start()
    waiting.join(0.3)
    assert waiting.is_alive(), "an evaluation must wait while a GPU job holds the server stopped"
    release.set()
    job.join(10)
    waiting.join(30)
    assert started_during_hold == [False]
    assert wait_until(mgr.is_healthy, timeout=10), "the waiting evaluation starts the server after the job"


def test_the_holder_itself_cannot_deadlock(mgr: LLMLifecycleManager) -> None:
    with mgr.held_stopped(), pytest.raises(LLMServerError, match=r"inside held_stopped\(\) by the same thread"):
        mgr.ensure_running()


def test_a_hold_gives_up_when_evaluations_do_not_drain(mgr: LLMLifecycleManager) -> None:
    entered = threading.Event()
    leave = threading.Event()

    def evaluation() -> None:
        with mgr.in_use():
            entered.set()
            leave.wait(10)

    worker = threading.Thread(target=evaluation)
    worker.start()
    assert entered.wait(10)
    with pytest.raises(LLMServerError, match=r"evaluations still in flight after 0\.2s"), mgr.held_stopped(0.2):
        pass
    leave.set()
    worker.join(10)

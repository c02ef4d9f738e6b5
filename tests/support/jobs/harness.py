"""A test root whose config runs the job scripts of this folder, and fakes for the server, judge and adjuster."""

from __future__ import annotations

import contextlib
import json
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from loguru import logger

from tests.support import lifecycle_fixtures
from tests.support.helpers import free_port, wait_until
from tests.support.records import evaluation_body
from watcher.autonomy.advisor import AdjustmentAnswer
from watcher.autonomy.jobs import JobRunner
from watcher.autonomy.orchestrator import Autonomy
from watcher.autonomy.policy import Policy, Proposal, Value
from watcher.autonomy.state import AutonomyState
from watcher.config import Settings, load_settings
from watcher.config.jobs import LoopStepConfig

JOBS = Path(__file__).resolve().parent
EXAMPLES = JOBS.parents[2] / "examples" / "step_outputs"

POLICY: dict[str, Any] = {
    "parameters": {
        "games": {"minimum": 10, "maximum": 1000, "max_change": 500},
        "learning_rate": {"minimum": 0.001, "maximum": 0.5, "max_change_ratio": 0.75},
        "tag": {},
    },
    "min_confidence": 0.6,
    "max_risk": "medium",
    "max_actions_per_hour": 4,
}


def job(script: str, name: str, step: str, root: Path, port: int, *args: str, **fields: Any) -> dict[str, Any]:
    """A job running ``tests/jobs/<script>`` that writes ``out/<name>.json`` from step ``step``'s good example."""
    out = f"out/{name}.json"
    template = str(EXAMPLES / f"step{step}_good.json")
    argv = [sys.executable, str(JOBS / script), "--name", name, "--out", out, "--port", str(port),
            "--template", template, "--record", str(root / "record.jsonl"), *args]  # fmt: skip
    return {"argv": argv, "output": out, "judge_step": step, "timeout_sec": 60, **fields}


def scenario(root: Path, port: int) -> dict[str, Any]:
    """Selfplay (a ``games`` slot) and a two-step loop whose second step passes only with learning_rate <= 0.05."""
    games = {"games": {"type": "int", "default": 100, "minimum": 10, "maximum": 1000}}
    lr = {"learning_rate": {"type": "float", "default": 0.1, "minimum": 0.0001, "maximum": 1.0}}
    tag = {"tag": {"type": "str", "default": "base"}}
    selfplay = job(
        "selfplay.py", "selfplay", "5", root, port, "--set", 'run_id="sp-{games}-{tag}"', parameters=games | tag
    )
    knob = ("--knob", "{learning_rate}", "--knob-limit", "0.05", "--metric", "_meta_optimizer.confidence")
    return {
        "jobs": {"selfplay": selfplay},
        "learning_loop": {
            "steps": [
                {"name": "scoring", **job("step.py", "scoring", "3", root, port)},
                {"name": "meta", **job("step.py", "meta", "4", root, port, *knob, parameters=lr)},
            ],
            "max_retries": 2,
        },
        "policy": POLICY,
    }


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    """Settings rooted at ``tmp_path`` (server on a free port) with the scenario, ``overrides`` merged on top."""
    settings = lifecycle_fixtures.make_settings(tmp_path)
    port = settings.server().port
    file = settings.config_dir / "watcher.json"
    data = json.loads(file.read_text())
    data |= scenario(tmp_path, port)
    for key, value in overrides.items():
        data[key] = value(data[key]) if callable(value) else value
    file.write_text(json.dumps(data, indent=2))
    return load_settings(settings.config_dir, root=tmp_path)


def records(root: Path) -> list[dict[str, Any]]:
    file = root / "record.jsonl"
    return [json.loads(line) for line in file.read_text().splitlines()] if file.exists() else []


def starts(root: Path) -> list[str]:
    return [line["name"] for line in records(root) if line["event"] == "start"]


# ---------------------------------------------------------------------------------------------------------------
# Fakes
# ---------------------------------------------------------------------------------------------------------------


class FakeServer:
    """A lease that records its transitions; nothing listens on its port."""

    def __init__(self, events: list[str] | None = None) -> None:
        self.name = "primary"
        self.base_url = f"http://127.0.0.1:{free_port()}"
        self.events = events if events is not None else []

    def ensure_running(self) -> None:
        self.events.append("start")

    def stop(self) -> None:
        self.events.append("stop")

    def is_healthy(self) -> bool:
        return False

    @contextlib.contextmanager
    def in_use(self) -> Iterator[None]:
        yield

    @contextlib.contextmanager
    def held_stopped(self) -> Iterator[None]:
        self.stop()
        yield


class FakeJudge:
    """Decisions scripted per output file name (``meta.json``: ["retry", "proceed"]); proceed when unscripted."""

    def __init__(self, events: list[str], script: Mapping[str, list[str]] | None = None) -> None:
        self.events = events
        self.script = {name: list(decisions) for name, decisions in (script or {}).items()}
        self.calls: list[tuple[str, str | None]] = []

    def judge(self, file: Path, step: str | None = None, *, request_id: str | None = None) -> dict[str, Any]:
        self.events.append(f"judge:{file.name}")
        self.calls.append((file.name, step))
        queue = self.script.get(file.name) or ["proceed"]
        decision = queue.pop(0) if len(queue) > 1 else queue[0]
        document = json.loads(file.read_text())
        run_id = document.get("run_id") if isinstance(document, dict) else None  # step 3 writes an array
        # A record the daemon can write as it is (it also judges the outputs jobs write); the run id the output
        # carried rides in the payload, so a test can tell which output was judged.
        return evaluation_body(file, step, decision, payload={"reasoning": "scripted", "run_id": run_id})


class FakeAdjuster:
    """Proposes the next of ``rounds`` (parameter -> value) at each retry; the last round repeats."""

    def __init__(self, *rounds: Mapping[str, Value], confidence: float = 0.9) -> None:
        self.rounds = [dict(r) for r in rounds] or [{}]
        self.confidence = confidence
        self.calls = 0

    def adjust(
        self, step: LoopStepConfig, judgement: Mapping[str, Any], values: Mapping[str, Value], request_id: str
    ) -> AdjustmentAnswer:
        changes = self.rounds[min(self.calls, len(self.rounds) - 1)].items()
        self.calls += 1
        proposals = tuple(Proposal("adjust_parameter", "scripted", k, values.get(k), v) for k, v in changes)
        return AdjustmentAnswer(proposals, self.confidence, {"parse_method": "fake"})


def autonomy(settings: Settings, judge: Any, adjuster: Any, server: Any | None = None) -> Autonomy:
    cfg = settings.watcher
    policy = Policy(cfg.policy, cfg.jobs, cfg.learning_loop, frozenset(cfg.steps))
    state = AutonomyState(settings.path(cfg.folders.state), policy.defaults())
    server = server or FakeServer(getattr(judge, "events", None))
    return Autonomy(settings, policy, state, server, judge, adjuster, JobRunner(settings, cfg.jobs))


def run_until_waiting_then_release(work: Callable[[], Any], release: Path) -> list[Any]:
    """Run ``work`` on a thread; once it logs that it waits for a job left running by a restart, create
    ``release`` (the job's cue to finish). Returns what ``work`` returned (empty if it did not finish)."""
    results: list[Any] = []
    messages: list[str] = []
    sink = logger.add(lambda m: messages.append(str(m)), level="WARNING")
    thread = threading.Thread(target=lambda: results.append(work()))
    try:
        thread.start()
        assert wait_until(lambda: any("waiting for it" in m for m in messages), timeout=10), "it never waited"
        release.touch()
        thread.join(timeout=30)
    finally:
        logger.remove(sink)
    return results

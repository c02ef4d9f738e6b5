"""GPU jobs with the LLM out of the way: stop the server (verified), run the job, start it again to judge.

    dispatch_selfplay       stop -> selfplay job -> judge its output
    dispatch_learning_loop  for each step: stop -> step job -> judge
                              proceed  -> next step
                              retry    -> ask parameter_adjustment, apply within policy, rerun (at most N times)
                              escalate -> stop the loop

Every attempt becomes one trace entry, stored with the job's record as soon as it is complete, so a request
handled again after a restart replays finished attempts from their records instead of running or judging them
again. One dispatch at a time per process: two GPU jobs side by side would defeat the point of stopping the LLM.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from loguru import logger

from watcher.autonomy.advisor import Adjuster, AdjustmentAnswer, ModelAdjuster
from watcher.autonomy.jobs import JobResult, JobRunner
from watcher.autonomy.policy import Policy, Value
from watcher.autonomy.state import AutonomyState
from watcher.config import Settings
from watcher.config.jobs import JobConfig, LoopStepConfig, render_argv
from watcher.errors import EvaluationError, InputError, LLMServerError, PolicyViolation
from watcher.judging.protocols import StepJudge
from watcher.llm.lease import ServerLease
from watcher.llm.process import port_listening

# A job may start this long before its output's mtime and still count as its writer (coarse filesystem clocks).
MTIME_SLACK_SEC = 1.0
_GPU = threading.Lock()


class ServerControl(ServerLease, Protocol):
    """The lifecycle manager as dispatch uses it: a lease that can also be held stopped, verified."""

    def stop(self) -> object: ...

    def held_stopped(self) -> AbstractContextManager[object]: ...

    def is_healthy(self) -> bool: ...


@dataclass
class Orchestrator:
    settings: Settings
    server: ServerControl
    judge: StepJudge
    adjuster: Adjuster
    runner: JobRunner
    policy: Policy
    request_id: str

    @property
    def events(self) -> Any:
        return logger.bind(request_id=self.request_id)

    def dispatch_selfplay(self, values: Mapping[str, Value], tag: str) -> dict[str, Any]:
        job = self.policy.jobs.selfplay
        if job is None:
            raise PolicyViolation("run_selfplay: no selfplay job is configured (jobs.selfplay)")
        with _GPU:
            entry = self.attempt("selfplay", job, values, f"{tag}.selfplay")
        decision = entry["decision"]
        reason = entry.get("reason") or f"selfplay output judged {decision}"
        return {"action": "run_selfplay", "decision": decision, "reason": reason, "runs": [entry]}

    def dispatch_learning_loop(
        self,
        values: Mapping[str, Value],
        tag: str,
        baseline: Mapping[str, Value] | None = None,
        steps: Sequence[str] | None = None,
    ) -> dict[str, Any]:
        """Run the loop from ``values``; change limits count from ``baseline`` (the values before the request).

        ``steps``: only the loop steps whose ``judge_step`` is listed, exactly those (in loop order); None: all.
        """
        baseline = values if baseline is None else baseline
        values = dict(values)
        runs: list[dict[str, Any]] = []
        selected = self.policy.loop_steps(steps)
        if not selected or self.policy.missing_steps(steps):
            raise PolicyViolation(f"run_learning_loop: no configured loop steps for {list(steps or [])}")
        with _GPU:
            for step in selected:
                decision, reason = self._loop_step(step, values, baseline, tag, runs)
                if decision != "proceed":
                    self.events.warning("learning loop stopped at step {}: {}", step.name, reason)
                    return {"action": "run_learning_loop", "decision": "escalate", "reason": reason, "runs": runs}
        names = ", ".join(step.name for step in selected)
        return {"action": "run_learning_loop", "decision": "proceed", "reason": f"every step proceeded: {names}",
                "runs": runs, "parameters": values}  # fmt: skip

    def _loop_step(
        self,
        step: LoopStepConfig,
        values: dict[str, Value],
        baseline: Mapping[str, Value],
        tag: str,
        runs: list[dict[str, Any]],
    ) -> tuple[str, str]:
        retries = self.policy.loop.max_retries
        for attempt in range(1, retries + 2):
            entry = self.attempt(step.name, step, values, f"{tag}.{step.name}.{attempt}")
            runs.append(entry)
            if entry["decision"] == "proceed":
                return "proceed", ""
            if entry["decision"] != "retry":
                return "escalate", f"step {step.name}: {entry.get('reason') or 'judged ' + entry['decision']}"
            if attempt > retries:
                return "escalate", f"step {step.name}: still judged retry after {retries} rerun(s)"
            if "adjustment" not in entry:
                entry["adjustment"] = self._adjust(step, entry, values, baseline)
                stored = {key: value for key, value in entry.items() if key != "replayed"}
                self.runner.annotate(entry["job_id"], "trace", stored)
            adjustment = entry["adjustment"]
            if not adjustment["applied"]:
                return "escalate", f"step {step.name}: no rerun: {'; '.join(adjustment['reasons'])}"
            values.update(adjustment["applied"])
        raise AssertionError("unreachable: the last attempt returns")

    # -- one attempt ------------------------------------------------------------------------------------------

    def attempt(self, name: str, job: JobConfig, values: Mapping[str, Value], job_id: str) -> dict[str, Any]:
        """Stop the server, run the job, judge its output; a finished attempt is replayed from its record."""
        stored = self.runner.load_record(job_id)
        if stored is not None and isinstance(stored.get("trace"), dict):
            self.events.info("{}: attempt {} already complete; replaying its record", name, job_id)
            return {**stored["trace"], "replayed": True}
        argv = render_argv(job, dict(values))
        # Held stopped for the whole job: no other worker can start the server on the GPU the job needs.
        with self.server.held_stopped() as report:
            stop = self._verify_stopped(report)
            result = self.runner.run(job_id, name, job, argv)
        entry: dict[str, Any] = {
            "name": name, "job_id": job_id, "argv": argv, "server_stop": stop, "job": result.as_dict(),
            "parameters": {key: values.get(key, slot.default) for key, slot in job.parameters.items()},
        }  # fmt: skip
        entry |= self._judge(job, result)
        self.runner.annotate(job_id, "trace", entry)
        return entry

    def _verify_stopped(self, report: object) -> dict[str, Any]:
        host, port = _host_port(self.server.base_url)
        if port_listening(host, port):
            # Never start a GPU job next to a server that is still up: it would hold the memory the job needs.
            raise LLMServerError(self.server.name, f"still answers on {host}:{port} after stop; job not started")
        if dataclasses.is_dataclass(report) and not isinstance(report, type):
            return dataclasses.asdict(report)
        return {"report": str(report)}

    def _judge(self, job: JobConfig, result: JobResult) -> dict[str, Any]:
        problem = job_problem(result)
        output = self.settings.path(job.output)
        if problem is None and not _written_since(output, result.started_epoch):
            problem = f"the job did not write its output {output}"
        if problem is not None:
            return {"decision": "escalate", "reason": problem, "output": str(output)}
        try:
            record = dict(self.judge.judge(output, job.judge_step, request_id=self.request_id))
        except InputError as exc:
            return {"decision": "escalate", "reason": f"output rejected: {exc}", "output": str(output)}
        except EvaluationError as exc:
            judgement = {"error": str(exc), "attempts": exc.attempts}
            return {"decision": "escalate", "reason": f"no validated judgement: {exc}", "judgement": judgement}
        return {"decision": record["decision"], "output": str(output), "judgement": record}

    # -- retry ------------------------------------------------------------------------------------------------

    def _adjust(
        self, step: LoopStepConfig, entry: Mapping[str, Any], values: Mapping[str, Value], baseline: Mapping[str, Value]
    ) -> dict[str, Any]:
        """The parameter changes for a rerun, each within policy; ``applied`` is empty when there is none."""
        if "adjust_parameter" not in self.policy.config.allowed_actions:
            return {"applied": {}, "reasons": ["adjust_parameter is not in policy.allowed_actions"]}
        current = {key: values.get(key, slot.default) for key, slot in step.parameters.items()}
        try:
            answer = self.adjuster.adjust(step, entry.get("judgement") or {}, current, self.request_id)
        except EvaluationError as exc:
            return {"applied": {}, "reasons": [f"no validated parameter adjustment: {exc}"]}
        applied, reasons = self._within_policy(step, answer, current, baseline)
        return {"proposals": [p.as_dict() for p in answer.proposals], "confidence": answer.confidence,
                "record": dict(answer.record), "applied": {} if reasons else applied, "reasons": reasons}  # fmt: skip

    def _within_policy(
        self,
        step: LoopStepConfig,
        answer: AdjustmentAnswer,
        current: Mapping[str, Value],
        baseline: Mapping[str, Value],
    ) -> tuple[dict[str, Value], list[str]]:
        reasons: list[str] = []
        minimum = self.policy.config.min_confidence
        if answer.confidence < minimum:
            reasons.append(f"adjustment confidence {answer.confidence} is below the policy minimum {minimum}")
        applied: dict[str, Value] = {}
        for proposal in answer.proposals:
            name = proposal.parameter or ""
            if name not in step.parameters:
                reasons.append(f"parameter {name!r}: step {step.name} has no such parameter")
                continue
            try:
                applied[name] = self.policy.check_change(name, proposal.proposed, baseline)
            except PolicyViolation as exc:
                reasons.append(str(exc))
        if not reasons and all(current.get(k) == v for k, v in applied.items()):
            reasons.append("the proposed values are the values that were just judged retry")
        return applied, list(dict.fromkeys(reasons))  # a model may repeat one proposal six times


def job_problem(result: JobResult) -> str | None:
    """Why a job's output must not be judged, or None. An unobservable exit code is not a problem by itself."""
    if result.status == "unknown":
        return f"job {result.job_id}: {result.note}"
    if result.status == "timed_out":
        return f"job {result.job_id} timed out and was stopped"
    if result.exit_code not in (0, None):
        detail = result.note or f"log: {result.log_file}"
        return f"job {result.job_id} exited with code {result.exit_code} ({detail})"
    return None


def _written_since(output: Path, started: float | None) -> bool:
    try:
        mtime = output.stat().st_mtime
    except OSError:
        return False
    return started is None or mtime >= started - MTIME_SLACK_SEC


def _host_port(base_url: str) -> tuple[str, int]:
    parts = urlsplit(base_url)
    return parts.hostname or "127.0.0.1", parts.port or 80


# ---------------------------------------------------------------------------------------------------------------
# Wiring
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class Autonomy:
    """Everything a plan needs: the policy, its persisted state, the server, the judge and the job runner."""

    settings: Settings
    policy: Policy
    state: AutonomyState
    server: ServerControl
    judge: StepJudge
    adjuster: Adjuster
    runner: JobRunner

    @classmethod
    def create(
        cls, settings: Settings, judge: StepJudge | None = None, server: ServerControl | None = None
    ) -> Autonomy:
        """Wired to the real lifecycle manager and evaluator unless others are given (tests give fakes)."""
        from watcher.judging.evaluator import Evaluator
        from watcher.llm.lifecycle import get_lifecycle_manager

        cfg = settings.watcher
        policy = Policy(cfg.policy, cfg.jobs, cfg.learning_loop, frozenset(cfg.steps))
        server = server or get_lifecycle_manager(settings, cfg.evaluation.server)
        state = AutonomyState(settings.path(cfg.folders.state), policy.defaults())
        return cls(settings, policy, state, server, judge or Evaluator(settings, server),
                   ModelAdjuster(settings, server, policy), JobRunner(settings, cfg.jobs))  # fmt: skip

    def orchestrator(self, request_id: str) -> Orchestrator:
        return Orchestrator(self.settings, self.server, self.judge, self.adjuster, self.runner, self.policy, request_id)

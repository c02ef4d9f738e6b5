"""How often the model's answer is a valid decision, with and without the grammar, and what the evaluator costs.

One run against a real llama-server (started on a free port for the run, stopped after):

* validity: ``--n`` evaluations across the step examples (good and bad, steps 1, 2, 2.5, 3-6), each asked twice
  with the same prompt: once with the step's grammar (through the evaluator, first attempt counted) and once without a
  grammar, the answer taken by strict JSON extraction. Sampling at ``--temperature`` with a different seed per
  evaluation, so the runs are ``--n`` different answers rather than one repeated.
* speed: generated tokens per second with and without the grammar (llama-server's own timings).
* overhead: the evaluator's wall time over a direct ``/completion`` with the same prompt, grammar and settings,
  at temperature 0 so both generate the same tokens; the order alternates so neither gains from the prompt cache.

    python bench/validity.py [--n 100] [--temperature 0.8] [--pairs 24] [--threads 1]
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from watcher.config import Settings, load_settings
from watcher.core.datadirs import SOURCE_ROOT
from watcher.grammars.loader import grammar_for_step
from watcher.judging.answers import AnswerInvalid, json_objects, validate_answer
from watcher.judging.evaluator import Evaluator
from watcher.llm.client import CompletionResult, LlamaClient
from watcher.llm.lifecycle import LLMLifecycleManager

EXAMPLES = SOURCE_ROOT / "examples" / "step_outputs"
STEP_KEYS = ("1", "2", "2.5", "3", "4", "5", "6")
ITEMS = [(step, EXAMPLES / f"step{step}_{kind}.json") for step in STEP_KEYS for kind in ("good", "bad")]


class RecordingClient(LlamaClient):
    """Keeps the arguments of every completion, so a direct call can repeat it exactly."""

    calls: list[tuple[str, str | None, dict[str, Any]]]

    def complete(self, prompt: str, grammar: str | None = None, **kwargs: Any) -> CompletionResult:
        self.calls.append((prompt, grammar, kwargs))
        return super().complete(prompt, grammar, **kwargs)


class RecordingEvaluator(Evaluator):
    def __init__(self, settings: Settings, lease: LLMLifecycleManager) -> None:
        super().__init__(settings, lease)
        self.calls: list[tuple[str, str | None, dict[str, Any]]] = []

    def _client(self) -> LlamaClient:
        client = RecordingClient(self.lease.base_url, self.lease.name, 600)
        client.calls = self.calls
        return client


def bench_settings(folder: Path, temperature: float, seed: int, threads: int | None) -> Settings:
    config = folder / "config"
    shutil.copytree(SOURCE_ROOT / "config", config)
    llm = json.loads((config / "llm_server_config.json").read_text())
    port = _free_port()
    llm["servers"]["primary"].update(
        port=port, context_length=8192, parallel_slots=1, idle_timeout_sec=0, threads=threads
    )
    (config / "llm_server_config.json").write_text(json.dumps(llm))
    watcher = json.loads((config / "watcher.json").read_text())
    for step in watcher["steps"].values():
        step["ask_model"] = "always"
    watcher["evaluation"].update(temperature=temperature, seed=seed)
    (config / "watcher.json").write_text(json.dumps(watcher))
    return load_settings(config, root=folder)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def with_seed(settings: Settings, temperature: float, seed: int) -> Settings:
    evaluation = settings.watcher.evaluation.model_copy(update={"temperature": temperature, "seed": seed})
    return dataclasses.replace(settings, watcher=settings.watcher.model_copy(update={"evaluation": evaluation}))


@contextmanager
def server(settings: Settings) -> Iterator[LLMLifecycleManager]:
    manager = LLMLifecycleManager(settings, "primary")
    manager.ensure_running()
    try:
        yield manager
    finally:
        manager.stop()


@dataclasses.dataclass
class Tally:
    valid: int = 0
    total: int = 0
    tokens: int = 0
    predicted_ms: float = 0.0

    def add(self, ok: bool, tokens: int, predicted_ms: float) -> None:
        self.valid += ok
        self.total += 1
        self.tokens += tokens
        self.predicted_ms += predicted_ms

    def line(self, label: str) -> str:
        share = 100 * self.valid / self.total if self.total else 0.0
        text = f"  {label:<34} {self.valid:>4}/{self.total:<4} {share:6.1f}%"
        if not self.predicted_ms:
            return text
        return f"{text}   {self.tokens / (self.predicted_ms / 1000):6.1f} tok/s generated"


def extracted_valid(grammar: str, text: str) -> bool:
    for candidate in json_objects(text):
        try:
            validate_answer(grammar, candidate)
        except AnswerInvalid:
            continue
        return True
    return False


def validity(settings: Settings, lease: LLMLifecycleManager, n: int, temperature: float) -> tuple[Tally, Tally, Tally]:
    """First constrained attempt, the evaluator's final answer, and the unconstrained answer, per evaluation."""
    constrained, final, free = Tally(), Tally(), Tally()
    client = LlamaClient(lease.base_url, lease.name, 600)
    for index, (step, file) in zip(range(n), itertools.cycle(ITEMS), strict=False):
        evaluator = RecordingEvaluator(with_seed(settings, temperature, index), lease)
        record = evaluator.evaluate(file, step)
        first = record.attempts[0]
        ok = first.outcome == "valid" and first.method == "grammar_constrained"
        constrained.add(ok, record.timings.predicted_tokens, record.timings.predicted_ms)
        final.add(record.parse_method == "grammar_constrained", 0, 0.0)
        prompt, _, kwargs = evaluator.calls[0]
        result = client.complete(prompt, None, **kwargs)
        free_ok = extracted_valid(grammar_for_step(settings, step), result.content)
        free.add(free_ok, result.tokens_predicted, result.predicted_ms)
        verdict = "valid" if free_ok else "invalid"
        print(f"  {index + 1:>3}/{n} step {step} {file.stem:<10} grammar: {first.outcome:<9} free: {verdict}")
    client.close()
    return constrained, final, free


def overhead(settings: Settings, lease: LLMLifecycleManager, pairs: int) -> list[tuple[float, float]]:
    """Seconds of (evaluator, direct call) per item, at temperature 0, both after one warm-up evaluation."""
    greedy = with_seed(settings, 0.0, 42)
    timed: list[tuple[float, float]] = []
    http = httpx.Client(base_url=lease.base_url, timeout=600)
    for index, (step, file) in zip(range(pairs), itertools.cycle(ITEMS), strict=False):
        evaluator = RecordingEvaluator(greedy, lease)
        if len(evaluator.evaluate(file, step).attempts) != 1:
            continue  # a re-asked answer is not one direct call; greedy decoding would re-ask again
        prompt, grammar, kwargs = evaluator.calls[0]
        body = {"prompt": prompt, "grammar": grammar, "cache_prompt": True, **kwargs}
        seconds = {}
        for which in ("evaluator", "direct") if index % 2 else ("direct", "evaluator"):
            started = time.perf_counter()
            if which == "evaluator":
                evaluator.evaluate(file, step)
            else:
                http.post("/completion", json=body).raise_for_status()
            seconds[which] = time.perf_counter() - started
        timed.append((seconds["evaluator"], seconds["direct"]))
    http.close()
    return timed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=100, help="evaluations for the validity figures (default 100)")
    parser.add_argument("--temperature", type=float, default=0.8, help="sampling temperature (default 0.8)")
    parser.add_argument("--pairs", type=int, default=24, help="evaluator/direct pairs for the overhead")
    # One thread by default: with more threads than free cores, ggml's spinning workers collapse throughput
    # (measured 0.6 vs 26 tokens/s next to another llama-server on 2 cores).
    parser.add_argument("--threads", type=int, default=1, help="llama-server --threads (default 1; 0: its own)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="watcher-bench-") as folder:
        settings = bench_settings(Path(folder), args.temperature, 0, args.threads or None)
        with server(settings) as lease:
            started = time.monotonic()
            constrained, final, free = validity(settings, lease, args.n, args.temperature)
            timed = overhead(settings, lease, args.pairs)
            elapsed = time.monotonic() - started
    print(f"\nvalid decisions ({args.n} evaluations, temperature {args.temperature}, step examples 1-6):")
    print(constrained.line("grammar, first attempt"))
    print(final.line("grammar, after re-ask/truncation"))
    print(free.line("no grammar + strict extraction"))
    evaluator_s, direct_s = sum(t[0] for t in timed), sum(t[1] for t in timed)
    ratios = sorted(e / d - 1 for e, d in timed)
    print(f"\nevaluator overhead over direct /completion ({len(timed)} pairs, temperature 0):")
    total = 100 * (evaluator_s / direct_s - 1)
    print(f"  total: evaluator {evaluator_s:.2f}s, direct {direct_s:.2f}s, overhead {total:+.2f}%")
    print(f"  per pair: median {100 * ratios[len(ratios) // 2]:+.2f}%")
    print(f"\nwall time {elapsed:.0f}s, llama-server --threads {args.threads or 'default'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

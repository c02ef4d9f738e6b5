"""Decision quality on the labelled step outputs, with the real model, in three modes.

    .venv/bin/python bench/quality.py [--limit N] [--steps 1,5] [--modes checks+model,model,checks] [--threads 1]

Modes (the same files, the same server, temperature and seed from config/watcher.json):
  checks+model  the shipped config (ask_model: borderline): the checks settle the clear cases, the model judges the
                rest with the check results in its prompt, and a failed hard check never ends as proceed
  model         the model alone: ask_model always, no checks (none in the prompt, none to override it) and
                min_confidence 0
  checks        the checks alone: ask_model never

Per step and overall, per mode:
  bad>p   share of bad outputs whose final decision is proceed      (goal 0%)
  good>p  share of good outputs whose final decision is proceed     (goal >= 90%)
  model   share of outputs that needed the model (parse_method is not checks_only)
An evaluation that yields no validated decision counts as not proceeding and is listed under "errors".

--limit N judges at most N good and N bad outputs per step, taken in turn from each kind (clear, soft,
borderline, missing, extra) so that a sample keeps the variety of the set. Steps are the config's (1, 2, 2.5,
3-6); step 1's cases are folders holding the config and the survivors its checks read beside it.
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from itertools import zip_longest
from pathlib import Path

from watcher.config import Settings, load_settings
from watcher.core.logs import configure_logging
from watcher.errors import WatcherError
from watcher.judging.evaluator import Evaluator
from watcher.llm.lifecycle import LLMLifecycleManager
from watcher.llm.provision import install

REPO = Path(__file__).resolve().parents[1]
LABELLED = REPO / "examples" / "step_outputs" / "labelled"
MODES = ("checks+model", "model", "checks")
# Sampling order: clear cases first, then the soft failures and narrow passes that the shipped mode sends to the
# model, then missing fields.
KIND_ORDER = ("clear", "soft", "borderline", "missing")
MODE_TITLES = {"checks+model": "checks + model", "model": "model only", "checks": "checks only"}


@dataclass(frozen=True)
class Labelled:
    file: Path
    step: str
    label: str  # good | bad
    kind: str  # clear | borderline | soft | missing


@dataclass(frozen=True)
class Outcome:
    item: Labelled
    mode: str
    decision: str  # proceed | retry | escalate | error
    used_model: bool
    seconds: float
    model_answer: tuple[str, float | None] | None = None  # the model's decision and confidence, before the policy


def load_labelled(steps: set[str] | None) -> list[Labelled]:
    manifest = json.loads((LABELLED / "manifest.json").read_text())
    # In-progress versions are never judged (their step's ready_when is false): not part of the quality figures.
    judged = [e for e in manifest if e["label"] in ("good", "bad")]
    items = [Labelled(LABELLED / e["file"], str(e["step"]), e["label"], e["kind"]) for e in judged]
    return [item for item in items if steps is None or item.step in steps]


def sample(items: list[Labelled], limit: int | None) -> list[Labelled]:
    """At most ``limit`` of each (step, label), alternating between kinds."""
    if limit is None:
        return items
    chosen: list[Labelled] = []
    for key in dict.fromkeys((i.step, i.label) for i in items):
        group = [i for i in items if (i.step, i.label) == key]
        kinds = sorted({i.kind for i in group}, key=lambda k: KIND_ORDER.index(k) if k in KIND_ORDER else 99)
        by_kind = [[i for i in group if i.kind == kind] for kind in kinds]
        interleaved = [i for row in zip_longest(*by_kind) for i in row if i is not None]
        chosen += interleaved[:limit]
    return chosen


def server_settings(root: Path, request_timeout: float, threads: int) -> Settings:
    """The shipped config, with its server on a free port, sized for one CPU evaluation at a time.

    The HTTP timeout is raised: this measures decisions, and a CPU shared with other work must not turn a slow
    answer into a missing one. One thread by default: llama.cpp's threads wait for each other at every step, so
    on a CPU shared with other work two threads are slower than one (measured: 7.7 against 16.7 tokens/s).
    """
    shutil.copytree(REPO / "config", root / "config")
    llm_file, watcher_file = root / "config" / "llm_server_config.json", root / "config" / "watcher.json"
    llm = json.loads(llm_file.read_text())
    llm["servers"]["primary"].update(port=free_port(), context_length=8192, parallel_slots=1, threads=threads)
    llm_file.write_text(json.dumps(llm))
    watcher = json.loads(watcher_file.read_text())
    watcher["evaluation"]["request_timeout_sec"] = request_timeout
    watcher_file.write_text(json.dumps(watcher))
    return load_settings(root / "config", root=root)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def mode_settings(settings: Settings, mode: str) -> Settings:
    """The settings of one mode: the shipped ones, or every step switched to the model alone or checks alone."""
    if mode == "checks+model":
        return settings
    steps = settings.watcher.steps
    if mode == "checks":
        new_steps = {n: s.model_copy(update={"ask_model": "never"}) for n, s in steps.items()}
        return replace(settings, watcher=settings.watcher.model_copy(update={"steps": new_steps}))
    new_steps = {n: s.model_copy(update={"ask_model": "always", "min_confidence": 0.0}) for n, s in steps.items()}
    watcher = settings.watcher.model_copy(update={"steps": new_steps, "checks": {}})
    return replace(settings, watcher=watcher)


def judge(evaluator: Evaluator, item: Labelled, mode: str) -> Outcome:
    started = time.monotonic()
    try:
        record = evaluator.evaluate(item.file, item.step)
    except WatcherError as exc:
        print(f"  error: {item.file.relative_to(LABELLED)} ({mode}): {exc}", flush=True)
        return Outcome(item, mode, "error", True, time.monotonic() - started)
    used = record.parse_method != "checks_only"
    verdict = record.verdict
    answer = (verdict.model_decision, verdict.model_confidence) if verdict.model_decision else None
    if used:
        took = time.monotonic() - started
        said = f"model said {answer[0]} at {answer[1]}" if answer else "no model answer"
        print(f"  {mode:<12} {item.file.relative_to(LABELLED)}: {record.decision}, {said} ({took:.0f} s)", flush=True)
    return Outcome(item, mode, record.decision, used, time.monotonic() - started, answer)


def run(settings: Settings, lease: LLMLifecycleManager, items: list[Labelled], modes: list[str]) -> list[Outcome]:
    outcomes: list[Outcome] = []
    for mode in modes:
        evaluator = Evaluator(mode_settings(settings, mode), lease)
        started = time.monotonic()
        done = [judge(evaluator, item, mode) for item in items]
        asked = [o for o in done if o.used_model]
        per_call = sum(o.seconds for o in asked) / len(asked) if asked else 0.0
        print(
            f"{MODE_TITLES[mode]}: {len(done)} outputs in {time.monotonic() - started:.1f} s, "
            f"{len(asked)} model evaluations ({per_call:.1f} s each)",
            flush=True,
        )
        outcomes += done
    return outcomes


def share(part: Iterable[bool]) -> str:
    flags = list(part)
    return f"{100 * sum(flags) / len(flags):.0f}%" if flags else "-"


def cells(outcomes: list[Outcome]) -> list[str]:
    bad = [o.decision == "proceed" for o in outcomes if o.item.label == "bad"]
    good = [o.decision == "proceed" for o in outcomes if o.item.label == "good"]
    return [share(bad), share(good), share(o.used_model for o in outcomes)]


def table(outcomes: list[Outcome], modes: list[str]) -> Iterator[str]:
    head = f"{'step':<8}{'good':>5}{'bad':>5}"
    yield head + "".join(f" | {MODE_TITLES[m]:^22}" for m in modes)
    yield " " * len(head) + "".join(f" | {'bad>p':>6} {'good>p':>7} {'model':>6}" for _ in modes)
    steps = list(dict.fromkeys(o.item.step for o in outcomes))
    for name, rows in [(s, [o for o in outcomes if o.item.step == s]) for s in steps] + [("overall", outcomes)]:
        first = [o for o in rows if o.mode == modes[0]]
        good = sum(o.item.label == "good" for o in first)
        line = f"{name:<8}{good:>5}{len(first) - good:>5}"
        for mode in modes:
            bad_p, good_p, model = cells([o for o in rows if o.mode == mode])
            line += f" | {bad_p:>6} {good_p:>7} {model:>6}"
        yield line
    for mode in modes:
        yield f"model answers before the policy, {MODE_TITLES[mode]}: {answers(outcomes, mode)}"
    errors = [o for o in outcomes if o.decision == "error"]
    yield f"errors (no validated decision, counted as not proceeding): {len(errors)}"
    for mode in modes:
        let_through = [o for o in outcomes if o.mode == mode and o.item.label == "bad" and o.decision == "proceed"]
        names = ", ".join(str(o.item.file.relative_to(LABELLED)) for o in let_through) or "none"
        yield f"bad outputs that proceeded, {MODE_TITLES[mode]}: {names}"


def answers(outcomes: list[Outcome], mode: str) -> str:
    """What the model said, by label: does its decision or its confidence tell good outputs from bad ones?"""
    parts = []
    for label in ("good", "bad"):
        said = [o.model_answer for o in outcomes if o.mode == mode and o.item.label == label and o.model_answer]
        if said:
            decisions = Counter(decision for decision, _ in said)
            confidences = [confidence for _, confidence in said if confidence is not None]
            mean = f", mean confidence {statistics.fmean(confidences):.2f}" if confidences else ""
            parts.append(f"{label} {dict(decisions)}{mean}")
    return "; ".join(parts) or "none"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, default=None, help="at most N good and N bad outputs per step")
    parser.add_argument("--steps", default=None, help="comma-separated step numbers (default: all)")
    parser.add_argument("--request-timeout", type=float, default=900.0, help="seconds per completion")
    parser.add_argument("--threads", type=int, default=1, help="llama-server --threads")
    parser.add_argument("--modes", default=",".join(MODES), help=f"comma-separated, from {', '.join(MODES)}")
    args = parser.parse_args()
    modes = [m for m in args.modes.split(",") if m]
    unknown = set(modes) - set(MODES)
    if unknown:
        parser.error(f"unknown mode(s) {', '.join(sorted(unknown))}; modes are {', '.join(MODES)}")
    configure_logging("ERROR")
    items = sample(load_labelled(set(args.steps.split(",")) if args.steps else None), args.limit)
    provisioned = install()
    began = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        settings = server_settings(Path(tmp), args.request_timeout, args.threads)
        lease = LLMLifecycleManager(settings)
        try:
            outcomes = run(settings, lease, items, modes)
        finally:
            lease.stop()
    evaluation = settings.watcher.evaluation
    print(
        f"\n{len(items)} labelled outputs{f' (--limit {args.limit})' if args.limit else ''}; model "
        f"{provisioned.model.name}, temperature {evaluation.temperature:g}, seed {evaluation.seed}; "
        f"wall time {time.monotonic() - began:.0f} s\n"
    )
    print("\n".join(table(outcomes, modes)))


if __name__ == "__main__":
    main()

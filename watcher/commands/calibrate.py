"""``watcher calibrate [--model NAME] [--steps 1,5] [--labelled DIR] [--limit N] [--write]``: does the model help?

Runs the configured model (or an installed one, ``--model``) over a labelled set and prints per step: the
outputs the checks leave open, accuracy on them with the checks alone and with checks + model, the bad outputs
that would proceed, the escalation share and the expected calibration error of the model's confidence; then the
recommended ``ask_model`` per step. ``--write`` sets those in ``watcher.json``. Each model evaluation prints its
prompt tokens, the tokens reused from the server's prompt cache, and its wall time.

The server runs on a free port with its state and log in a temporary folder, so a running daemon is not touched.
"""

from __future__ import annotations

import argparse
import dataclasses
import socket
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from watcher.config import load_settings
from watcher.config.steps import step_order
from watcher.exitcodes import ExitCode

if TYPE_CHECKING:
    from watcher.config import Settings
    from watcher.judging.calibration import Outcome


CALIBRATION_TIMEOUT_SEC = 900.0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("calibrate", help="measure per step whether the model adds value over the checks")
    parser.add_argument("--model", default=None, metavar="NAME", help="an installed model (watcher llm install)")
    parser.add_argument("--steps", default=None, help="comma-separated step numbers (default: all in the set)")
    parser.add_argument("--labelled", type=Path, default=None, help="labelled folder (default: the shipped set)")
    parser.add_argument(
        "--limit", type=int, default=None, help="at most N open outputs (the model's) per step and label"
    )
    parser.add_argument(
        "--settled", type=int, default=0, metavar="N",
        help="also show N settled outputs per step and label to the model alone: its reading of the facts",
    )  # fmt: skip
    parser.add_argument("--threads", type=int, default=1, help="llama-server --threads (default 1)")
    parser.add_argument("--write", action="store_true", help="write the recommended ask_model into watcher.json")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from watcher.core.datadirs import SOURCE_ROOT
    from watcher.judging.calibration import limit_open, load_labelled, settled_sample

    settings = load_settings(args.config_dir)
    folder = args.labelled or SOURCE_ROOT / "examples" / "step_outputs" / "labelled"
    steps = [s for s in args.steps.split(",") if s] if args.steps else None
    labelled = load_labelled(folder, settings, steps)
    items = limit_open(settings, labelled, args.limit)
    probes = settled_sample(settings, labelled, args.settled)
    if not items:
        sys.stderr.write(f"watcher: error: no labelled outputs in {folder}\n")
        return ExitCode.INVALID_INPUT
    with tempfile.TemporaryDirectory(prefix="watcher-calibrate-") as tmp:
        outcomes = calibrate(server_settings(settings, Path(tmp), args.model, args.threads), items, probes)
    recommended = report(outcomes)
    if args.write:
        from watcher.judging.calibration import write_recommendations

        write_recommendations(settings.config_dir / "watcher.json", recommended)
        sys.stdout.write(f"written into {settings.config_dir / 'watcher.json'}\n")
    return ExitCode.OK


def calibrate(settings: Settings, items: list[Any], probes: set[Any] | None = None) -> list[Outcome]:
    from watcher.judging.calibration import measure
    from watcher.judging.evaluator import Evaluator
    from watcher.llm.lifecycle import LLMLifecycleManager

    name = settings.watcher.evaluation.server
    lease = LLMLifecycleManager(settings, name)
    evaluator = Evaluator(_with_ask_model(settings, "borderline"), lease)
    reader = Evaluator(_with_ask_model(settings, "always"), lease)
    outcomes = []
    try:
        for item in items:
            probe = (lambda i: reader.evaluate(i.file, i.step)) if item in (probes or ()) else None
            outcome = measure(settings, item, lambda i: evaluator.evaluate(i.file, i.step), probe)
            outcomes.append(outcome)
            if outcome.model_decision is not None or outcome.decision == "error":
                sys.stdout.write(_evaluation_line(outcome))
                sys.stdout.flush()
    finally:
        lease.stop()
    return outcomes


def _with_ask_model(settings: Settings, mode: str) -> Settings:
    steps = {n: s.model_copy(update={"ask_model": mode}) for n, s in settings.watcher.steps.items()}
    return dataclasses.replace(settings, watcher=settings.watcher.model_copy(update={"steps": steps}))


def _evaluation_line(o: Outcome) -> str:
    said = f"{o.model_decision} at {o.confidence:.2f}" if o.confidence is not None else str(o.model_decision)
    what = "" if o.open else "settled: checks "
    # A case folder (the output beside the files its checks read) is named by the folder.
    case = o.item.file.name if o.item.file.parent.name == o.item.label else o.item.file.parent.name
    return (
        f"  step {o.item.step} {o.item.label}/{case}: {what}{o.decision} (model {said}); "
        f"prompt {o.prompt_tokens} tokens, {o.cached_tokens} cached, {o.seconds:.1f} s\n"
    )


def report(outcomes: list[Outcome]) -> dict[str, str]:
    from watcher.judging.calibration import HEADER, summarise

    summaries = [summarise(s, [o for o in outcomes if o.item.step == s]) for s in _steps(outcomes)]
    sys.stdout.write("\n" + HEADER + "\n" + "".join(summary.line() + "\n" for summary in summaries))
    asked = [o for o in outcomes if o.model_decision is not None]
    if asked:
        cached = sum(o.cached_tokens for o in asked) / max(1, sum(o.prompt_tokens for o in asked))
        seconds = sum(o.seconds for o in asked) / len(asked)
        sys.stdout.write(
            f"{len(asked)} model evaluations, {seconds:.1f} s each, {cached:.0%} of prompt tokens cached\n"
        )
    return {summary.step: summary.recommend for summary in summaries}


def _steps(outcomes: list[Outcome]) -> list[str]:
    return sorted(dict.fromkeys(o.item.step for o in outcomes), key=step_order)


def server_settings(settings: Settings, root: Path, model: str | None, threads: int) -> Settings:
    """The evaluation server on a free port, one slot, state and logs under ``root``; ``model`` if given."""
    from watcher.errors import ModelNotFound
    from watcher.llm.models import model_spec
    from watcher.llm.provision import cached_model, resolve_model

    name = settings.watcher.evaluation.server
    server = settings.server(name)
    # Absolute: the state and log folders move below.
    path = cached_model(model) if model else resolve_model(server, settings.root, name)
    if not path.is_file():
        raise ModelNotFound(name, f"model {model} is not installed: run `watcher llm install --model {model}`")
    if model:  # the model's own template, or the built-in one it needs
        template = model_spec(model).chat_template
        server = server.model_copy(update={"chat_template": template, "chat_template_file": None})
    server = server.model_copy(
        update={"model_path": path, "port": _free_port(), "parallel_slots": 1, "threads": threads,
                "context_length": 8192, "log_dir": root / "logs"}
    )  # fmt: skip
    folders = settings.watcher.folders.model_copy(update={"state": root / "state"})
    # Nobody waits on a calibration: a slow answer on a busy machine is measured, not given up on.
    timeout = max(settings.watcher.evaluation.request_timeout_sec, CALIBRATION_TIMEOUT_SEC)
    evaluation = settings.watcher.evaluation.model_copy(update={"request_timeout_sec": timeout})
    watcher = settings.watcher.model_copy(update={"folders": folders, "evaluation": evaluation})
    llm = settings.llm.model_copy(update={"servers": {**settings.llm.servers, name: server}})
    return dataclasses.replace(settings, llm=llm, watcher=watcher)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])

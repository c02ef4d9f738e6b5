"""Decision quality on the labelled step outputs, per model: a thin caller of ``watcher calibrate``.

    .venv/bin/python bench/quality.py [--models gemma-270m,qwen-0.5b,qwen-1.5b] [--limit N] [--steps 1,5]
                                      [--threads 1]

For each model (installed with ``watcher llm install --model NAME``) it runs the calibration - every output the
checks settle, and at most N open ones per step and label through the model - prints its per-step table and
per-evaluation prompt tokens, cached tokens and wall time, then one line per model side by side:

  open     outputs the checks leave to the model (the model's share of the work)
  checks   accuracy of the checks alone on them        +model  accuracy of checks + model on them
  judged   accuracy of the checks alone on the open outputs of kind "open" (labels the thresholds alone do not
           give; the reason of each is in the manifest's note)   +model  of checks + model on them
  bad>p    bad outputs whose checks + model decision is proceed (goal 0)
  good>p   good outputs whose checks + model decision is proceed (goal >= 95% for the default judge)
  reading  the model alone agreeing with the label on settled outputs shown to it (--settled N; goal >= 90%)
  ECE      expected calibration error of the model's decision confidence (goal <= 0.15)
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from watcher.commands.calibrate import calibrate, report, server_settings
from watcher.config import load_settings
from watcher.core.datadirs import SOURCE_ROOT
from watcher.core.logs import configure_logging
from watcher.judging.calibration import (
    Outcome,
    expected_calibration_error,
    limit_open,
    load_labelled,
    right,
    settled_sample,
)

LABELLED = SOURCE_ROOT / "examples" / "step_outputs" / "labelled"


def overall(model: str, outcomes: list[Outcome], seconds: float) -> str:
    opened = [o for o in outcomes if o.open]
    asked = [o for o in opened if o.model_decision is not None]

    def pct(flags: list[bool]) -> str:
        return f"{100 * sum(flags) / len(flags):.0f}%" if flags else "-"

    bad = [o.decision == "proceed" for o in outcomes if o.item.label == "bad"]
    good = [o.decision == "proceed" for o in outcomes if o.item.label == "good"]
    judged = [o for o in opened if o.item.kind == "open"]
    probed = [o for o in outcomes if not o.open and o.model_decision is not None]
    answers = [(o.confidence, right(o.item.label, o.model_decision)) for o in asked + probed]
    ece = expected_calibration_error(answers)
    return (
        f"{model:<12} {len(outcomes):>7} {len(opened):>5} {len(asked):>6} "
        f"{pct([right(o.item.label, o.checks_decision) for o in opened]):>7} "
        f"{pct([right(o.item.label, o.decision) for o in opened]):>7} "
        f"{pct([right(o.item.label, o.checks_decision) for o in judged]):>7} "
        f"{pct([right(o.item.label, o.decision) for o in judged]):>7} {pct(bad):>6} {pct(good):>7} "
        f"{pct([right(o.item.label, o.model_decision) for o in probed]):>7} "
        f"{'-' if ece is None else f'{ece:.2f}':>5} {seconds / max(1, len(asked + probed)):>7.1f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="gemma-270m,qwen-0.5b,qwen-1.5b")
    parser.add_argument("--limit", type=int, default=None, help="at most N open outputs per step and label")
    parser.add_argument("--steps", default=None, help="comma-separated step numbers (default: all)")
    parser.add_argument("--settled", type=int, default=0, help="N settled outputs per step and label for reading")
    parser.add_argument("--threads", type=int, default=1, help="llama-server --threads")
    args = parser.parse_args()
    configure_logging("ERROR")
    settings = load_settings(SOURCE_ROOT / "config")
    steps = args.steps.split(",") if args.steps else None
    labelled = load_labelled(LABELLED, settings, steps)
    items = limit_open(settings, labelled, args.limit)
    probes = settled_sample(settings, labelled, args.settled)
    lines = []
    for model in [m for m in args.models.split(",") if m]:
        print(f"\n== {model}", flush=True)
        began = time.monotonic()
        with tempfile.TemporaryDirectory() as tmp:
            outcomes = calibrate(server_settings(settings, Path(tmp), model, args.threads), items, probes)
        report(outcomes)
        lines.append(overall(model, outcomes, time.monotonic() - began))
    print(f"\n{len(items)} labelled outputs{f' (at most {args.limit} open per step and label)' if args.limit else ''}")
    print("model        outputs  open  asked  checks  +model  judged  +model  bad>p  good>p reading   ECE  s/eval")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

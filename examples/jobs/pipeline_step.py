#!/usr/bin/env python3
"""Example pipeline step job for the learning loop. Replace it with your own commands in config/watcher.json.

It writes the step's output from the good example in ``examples/step_outputs/``, with the parameters it was given
applied, to a temporary name and renamed so the watcher never reads half a file.
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

EXAMPLES = Path(__file__).resolve().parents[1] / "step_outputs"


def apply(step: int, output: Any, args: argparse.Namespace) -> None:
    """The parameters into the step's real layout (step 4: reinforcement_engine_config.json, step 5: the sidecar)."""
    if step == 4 and args.learning_rate is not None:
        output["training"]["learning_rate"] = args.learning_rate
    if step == 4 and args.max_depth is not None:
        output["model"]["max_depth"] = args.max_depth
    if step == 5 and args.dropout is not None:
        output["hyperparameters"]["dropout"] = args.dropout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--step", type=int, required=True, choices=range(1, 7))
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--learning-rate", type=float)
    parser.add_argument("--max-depth", type=int)
    parser.add_argument("--dropout", type=float)
    args = parser.parse_args()
    output = json.loads((EXAMPLES / f"step{args.step}_good.json").read_text(encoding="utf-8"))
    if isinstance(output, dict):  # step 3 writes an array of records
        output["generated_at"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    apply(args.step, output, args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_name(f".{args.out.name}.tmp")
    tmp.write_text(json.dumps(output, indent=2) + "\n", encoding="utf-8")
    tmp.replace(args.out)


if __name__ == "__main__":
    main()

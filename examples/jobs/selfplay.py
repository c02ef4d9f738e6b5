#!/usr/bin/env python3
"""Example selfplay job: stands in for a GPU selfplay run. Replace it with your own command in config/watcher.json.

It plays ``--games`` games at ``--temperature`` and writes a training summary shaped like a step 5 output (the
config judges it as step 5), written to a temporary name and renamed so the watcher never reads half a file.
"""

from __future__ import annotations

import argparse
import json
import os
import random
from datetime import UTC, datetime
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--games", type=int, required=True)
    parser.add_argument("--temperature", type=float, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    rng = random.Random(args.games)
    # More games generalise better; a high temperature explores more and converges later.
    val_auc = min(0.95, 0.70 + 0.03 * args.games**0.25 - 0.03 * abs(args.temperature - 1.0))
    train_auc = min(0.99, val_auc + 0.02 + rng.uniform(0, 0.01))
    completed = min(200, 40 + args.games // 20)
    summary = {
        "step": 5,
        "run_id": f"selfplay-{datetime.now(UTC):%Y%m%d-%H%M%S}",
        "generated_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "meta_run_id": os.environ.get("WATCHER_JOB_ID", "manual"),
        "epochs": {"max": 200, "completed": completed, "best": max(1, completed - 12)},
        "early_stopping": {"enabled": True, "monitor": "val_loss", "patience": 12, "triggered": completed < 200},
        "regularization": {"dropout": 0.3, "weight_decay": 0.0001, "augmentation": ["selfplay"]},
        "metrics": {
            "train": {"loss": round(1.2 - train_auc, 3), "auc": round(train_auc, 3), "accuracy": 0.85},
            "validation": {"loss": round(1.2 - val_auc, 3), "auc": round(val_auc, 3), "accuracy": 0.83},
            "test": {"loss": round(1.21 - val_auc, 3), "auc": round(val_auc - 0.004, 3), "accuracy": 0.83},
        },
        "generalization_gap": {"loss": round(train_auc - val_auc, 3), "auc": round(train_auc - val_auc, 3)},
        "overfit_ratio": round((1.2 - val_auc) / (1.2 - train_auc), 3),
        "warnings": [],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_name(f".{args.out.name}.tmp")
    tmp.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    tmp.replace(args.out)


if __name__ == "__main__":
    main()

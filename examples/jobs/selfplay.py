#!/usr/bin/env python3
"""Example selfplay job: stands in for a GPU selfplay run. Replace it with your own command in config/watcher.json.

It plays ``--games`` games at ``--temperature`` and writes a model sidecar shaped like step 5's (the
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
    val_r2 = min(0.9, 0.45 + 0.04 * args.games**0.25 - 0.05 * abs(args.temperature - 1.0))
    train_r2 = min(0.98, val_r2 + 0.03 + rng.uniform(0, 0.02))
    variance = round(0.01 + 0.0005 * args.games**0.5, 5)
    # The layout of step 5's model sidecar (models/reinforcement/best_model.meta.json); the config judges it as step 5.
    summary = {
        "schema_version": "3.4.0",
        "model_type": "neural_net",
        "checkpoint_path": "models/reinforcement/best_model.pth",
        "feature_schema": {"feature_count": 89, "ordering": "lexicographic_by_key"},
        "signal_quality": {
            "target_name": "holdout_quality",
            "signal_status": "healthy",
            "signal_confidence": round(min(1.0, variance * 10 + 0.9), 3),
            "prediction_allowed": True,
            "target_variance": variance,
        },
        "training_metrics": {
            "r2": round(val_r2, 3),
            "train_mae": round(0.5 - train_r2 / 2, 3),
            "val_mae": round(0.5 - val_r2 / 2, 3),
            "overfit_ratio": round((1.0 - val_r2) / (1.0 - train_r2), 3),
        },
        "hyperparameters": {"games": args.games, "temperature": args.temperature, "dropout": 0.3},
        "training_info": {"completed_at": datetime.now(UTC).isoformat()},
        "agent_metadata": {
            "pipeline_step": 5,
            "run_id": f"selfplay_{datetime.now(UTC):%Y%m%d_%H%M%S}",
            "parent_run_id": os.environ.get("WATCHER_JOB_ID", "manual"),
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_name(f".{args.out.name}.tmp")
    tmp.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    tmp.replace(args.out)


if __name__ == "__main__":
    main()

"""Writes the example step outputs, in the formats the pipeline (mmercalde/prng_cluster_public) writes them.

Outputs, all from a seeded random generator (running it again writes the same bytes):
- ``step<K>_good.json``, ``step<K>_bad.json``, ``step<K>_invalid.json`` for every step K (1, 2, 2.5, 3, 4, 5, 6),
  and ``bidirectional_survivors.json`` next to them: step 1's second file, read by its survivor-count check;
- ``labelled/``: at least 10 good and 10 bad outputs per step plus ``manifest.json`` (file, step, label, kind,
  note), and for step 1 a few ``in_progress`` versions (written while the optimizer runs), which are never judged.
  Step 1 cases are folders holding ``optimal_window_config.json`` and its ``bidirectional_survivors.json``.

Kinds: ``clear`` (unmistakable), ``borderline`` (a value near a threshold), ``soft`` (only a soft signal is off:
tolerable when good, a real problem when bad), ``missing`` (optional keys absent, e.g. the parallel optimizer path
that writes no trial counts), ``extra`` (keys the schema does not name: accepted and listed), ``in_progress``.
The files are ours, written to the layouts of the pipeline's writers (see the README's step reference); every one
that is not ``invalid`` or ``in_progress`` validates against its step's schema. Run from anywhere:
``python examples/step_outputs/generate.py``.
"""

from __future__ import annotations

import json
import math
import random
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
LABELLED = HERE / "labelled"
SEED = 20261204
Doc = Any
Knobs = dict[str, Any]
Variant = tuple[str, str, str, Knobs]  # label, kind, note, knobs

FEATURES = (
    ["score", "confidence", "exact_matches", "total_predictions", "best_offset"]
    + [f"pred_{s}" for s in ("mean", "std", "min", "max")]
    + [f"residual_{s}" for s in ("mean", "std", "abs_mean", "max_abs")]
    + ["actual_mean", "actual_std", "lane_agreement_8", "lane_agreement_125", "lane_consistency"]
    + [f"{d}_digit_agreement" for d in ("hundreds", "tens", "ones")]
    + ["expected_digit_match_count"]
    + [f"temporal_stability_{s}" for s in ("mean", "std", "min", "max", "trend")]
    + [f"residue_{m}_{k}" for m in (8, 125, 1000) for k in ("match_rate", "coherence", "kl_divergence")]
    + [f"batt_fft_{i}" for i in range(5)]
    + [f"batt_ac_lag_{i:02d}" for i in range(1, 11)]
    + ["batt_ac_decay_rate", "batt_ac_sig_lag_count"]
    + [f"batt_cs_{i}" for i in range(3)]
    + [f"batt_bf_{i}" for i in range(3)]
    + ["forward_count", "reverse_count", "bidirectional_count", "intersection_count", "intersection_ratio"]
    + ["survivor_overlap_ratio", "skip_min", "skip_max", "skip_range", "skip_mean", "skip_std", "skip_entropy"]
    + ["bidirectional_selectivity", "survivor_velocity", "velocity_acceleration", "intersection_weight"]
    + ["forward_only_count", "reverse_only_count"]
    + [f"global_residue_{m}_entropy" for m in (8, 125, 1000)]
    + ["global_power_of_two_bias", "global_frequency_bias_ratio", "global_suspicious_gap_percentage"]
    + ["global_regime_change_detected", "global_regime_age", "global_reseed_probability"]
    + [f"global_marker_{m}_variance" for m in (390, 804, 575)]
    + ["global_high_variance_count", "global_temporal_stability"]
)


def good(kind: str, note: str, **knobs: Any) -> Variant:
    return ("good", kind, note, knobs)


def bad(kind: str, note: str, **knobs: Any) -> Variant:
    return ("bad", kind, note, knobs)


def r4(x: float) -> float:
    return round(x, 4)


def stamp(rng: random.Random) -> str:
    return f"2026-03-{rng.randint(10, 28):02d}T{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:05.1{rng.randint(0, 99999):05d}"


# --- step 1 (optimal_window_config.json) and step 2 (bidirectional_survivors.json) ----------------------------------
def survivors(rng: random.Random, k: Knobs) -> list[dict[str, Any]]:
    """Survivor records as the sieve writes them: sorted by seed, per-seed rates, trial-level context."""
    n, fwd, rev = k.get("records", 60), k.get("fwd", 1400), k.get("rev", 1300)
    bi = k.get("bi", 950)
    inter_ratio = k.get("intersection_ratio", r4(bi / max(1, min(fwd, rev))))
    seeds = sorted(rng.sample(range(k.get("seed_max", 4_000_000_000)), n))
    out = []
    for i, seed in enumerate(seeds):
        low, high = k.get("rate_low", 0.3), k.get("rate_high", 0.9)
        f, r = r4(rng.uniform(low, high)), r4(rng.uniform(low, high))
        skip_min, skip_max = 8, rng.choice([72, 96, 120])
        record: dict[str, Any] = {
            "seed": seed, "forward_match_rate": f, "reverse_match_rate": r, "score": r4((f + r) / 2),
            "window_size": k.get("window", 4), "offset": 0, "skip_min": skip_min, "skip_max": skip_max,
            "skip_range": skip_max - skip_min, "sessions": ["midday", "evening"], "trial_number": rng.randint(0, 49),
            "prng_base": "java_lcg", "prng_type": "java_lcg" if i % 3 else "java_lcg_hybrid",
            "skip_mode": k.get("skip_mode", "constant" if i % 4 else "variable"),
            "forward_count": fwd, "reverse_count": rev, "bidirectional_count": bi, "intersection_count": bi,
            "intersection_ratio": inter_ratio, "forward_only_count": fwd - bi, "reverse_only_count": rev - bi,
            "survivor_overlap_ratio": r4(bi / max(1, fwd + rev - bi)), "bidirectional_selectivity": r4(bi / fwd),
            "intersection_weight": r4(inter_ratio * 0.5),
        }  # fmt: skip
        for key in k.get("drop_record", ()):
            record.pop(key, None)
        out.append(record)
    return out


def window_config(rng: random.Random, k: Knobs) -> dict[str, Any]:
    seeds = k.get("seeds", rng.choice([250_000, 500_000, 1_000_000]))
    rate = k.get("rate", rng.uniform(0.002, 0.012))
    bi = k.get("bi", int(seeds * rate))
    fwd = k.get("fwd", int(bi / rng.uniform(0.35, 0.7)))
    rev = k.get("rev", int(bi / rng.uniform(0.35, 0.7)))
    total = k.get("total", 50)
    done = k.get("done", total - rng.randint(0, 8))
    doc: dict[str, Any] = {
        "window_size": k.get("window", rng.choice([3, 4, 5, 6, 8])), "offset": rng.randint(0, 40),
        "skip_min": 8, "skip_max": rng.choice([72, 96, 150]), "sessions": ["midday", "evening"],
        "prng_type": "java_lcg", "test_both_modes": True, "seed_count": seeds, "optimization_score": float(bi),
        "forward_count": fwd, "reverse_count": rev, "bidirectional_count": bi,
        "status": k.get("status", "complete"), "completed_trials": done, "total_trials": total,
        "best_trial_number": rng.randint(0, total - 1), "best_value": float(bi), "best_bidirectional_count": bi,
        "last_updated": stamp(rng), "last_trial_number": total - 1, "last_trial_value": float(int(bi * 0.9)),
        "completed_at": stamp(rng),
        "agent_metadata": {
            "inputs": [{"file": "daily3.json", "required": True}],
            "outputs": ["optimal_window_config.json", "bidirectional_survivors.json", "train_history.json",
                        "holdout_history.json"],
            "parent_run_id": None, "pipeline_step": 1, "pipeline_step_name": "window_optimizer",
            "follow_up_agent": "scorer_meta_agent", "confidence": 0.95,
            "suggested_params": {"window_size": 4, "forward_threshold": 0.25, "reverse_threshold": 0.25, "k_folds": 5},
            "reasoning": f"Optimization found N/A survivors with score {float(bi):.4f}",
            "timestamp_injected": stamp(rng) + "+00:00",
        },
        "run_id": f"step1_20260315_{rng.randint(0, 235959):06d}_{rng.randint(10000, 99999)}",
    }  # fmt: skip
    for key in k.get("drop", ()):
        doc.pop(key, None)
    return doc


def in_progress(rng: random.Random, k: Knobs) -> dict[str, Any]:
    """A version written after a trial, while the optimizer still runs (before any trial: only progress keys)."""
    doc: dict[str, Any] = {
        "status": "in_progress", "completed_trials": k.get("done", 0), "total_trials": 50,
        "last_updated": stamp(rng), "last_trial_number": k.get("done", 0), "last_trial_value": None,
    }  # fmt: skip
    if k.get("done", 0) == 0:
        doc["note"] = "No successful trials yet"
        return doc
    bi = rng.randint(600, 4000)
    params = {"window_size": 4, "offset": 2, "skip_min": 8, "skip_max": 96, "session_idx": 0,
              "forward_threshold": 0.25, "reverse_threshold": 0.25}  # fmt: skip
    doc |= {"best_trial_number": 3, "best_value": float(bi), "best_bidirectional_count": bi, "best_params": params}
    doc |= {key: value for key, value in params.items() if key != "session_idx"}
    return doc


STEP1: list[Variant] = [
    *[good("clear", "healthy search: low survival rate, strong overlap") for _ in range(6)],
    good("borderline", "survival rate 1.9%, just under the 2% band", rate=0.019),
    good("borderline", "overlap 0.27, just above 0.25", bi=2700, fwd=10000, rev=11000, seeds=500_000),
    good("soft", "survival rate 4%: the 2-10% band the doc calls proceed", rate=0.04),
    good(
        "missing",
        "parallel optimizer path: no trial counts, no status",
        drop=[
            "status",
            "completed_trials",
            "total_trials",
            "best_trial_number",
            "best_value",
            "last_updated",
            "last_trial_number",
            "last_trial_value",
            "best_bidirectional_count",
        ],
    ),  # fmt: skip
    good("clear", "a short search of 20 trials that converged", total=20, done=20),
    bad("clear", "no bidirectional survivor at all", bi=0, fwd=3000, rev=2500, survivors={"records": 0}),
    bad("clear", "sieve far too loose: 25% of seeds survive", rate=0.25),
    bad(
        "clear",
        "only 2 survivors written (the S123 smoke-test case)",
        seeds=100_000,
        bi=2,
        fwd=9,
        rev=7,
        survivors={"records": 2},
    ),  # fmt: skip
    bad("clear", "loose sieve and few survivors kept", rate=0.2, survivors={"records": 30}),
    bad("borderline", "survival rate 10.5%, just past the 10% retry line", rate=0.105),
    bad("borderline", "49 survivors, one under the pipeline's minimum of 50", survivors={"records": 49}),
    bad("soft", "directions disagree: overlap 0.08", bi=800, fwd=10000, rev=12000, seeds=500_000),
    bad("soft", "every trial but one pruned", total=50, done=0),
    bad("missing", "survivors file missing", survivors=None),
    bad("clear", "optimizer reported a failed run", status="failed"),
]
STEP1_WAITING: list[Variant] = [
    ("in_progress", "in_progress", "before the first completed trial", {"done": 0}),
    ("in_progress", "in_progress", "after 7 of 50 trials", {"done": 7}),
    ("in_progress", "in_progress", "after 49 of 50 trials", {"done": 49}),
]

STEP2: list[Variant] = [
    *[good("clear", "healthy survivors: high per-seed rates, good intersection") for _ in range(6)],
    good("borderline", "intersection ratio 0.53, just above 0.5", intersection_ratio=0.53),
    good("borderline", "52 survivors, just above the minimum of 50", records=52),
    good("soft", "intersection ratio 0.42: worth a look", intersection_ratio=0.42),
    good("extra", "records of a newer release with an extra key", extra_key="survivor_velocity"),
    good("clear", "all variable-skip survivors", skip_mode="variable"),
    bad("clear", "only 12 survivors", records=12),
    bad("clear", "directions barely intersect: ratio 0.1", intersection_ratio=0.1),
    bad("clear", "seeds outside the 32-bit range", seed_max=9_000_000_000),
    bad("clear", "unknown skip mode", skip_mode="adaptive"),
    bad("borderline", "intersection ratio 0.24, just under the hard line", intersection_ratio=0.24),
    bad("borderline", "49 survivors", records=49),
    bad("soft", "most survivors below the sieve threshold", rate_low=0.02, rate_high=0.3),
    bad(
        "missing", "v2.0 records: no per-seed match rates", drop_record=("forward_match_rate", "reverse_match_rate")
    ),  # fmt: skip
    bad("clear", "an empty survivor list", records=0),
    bad("clear", "a single survivor", records=1),
]


# --- step 2.5 (optimal_scorer_config.json) -----------------------------------------------------------------------
SPACE = {
    "residue_mod_1": (5, 20), "residue_mod_2": (50, 150), "residue_mod_3": (500, 1500), "max_offset": (1, 15),
    "temporal_window_size": (50, 100), "temporal_num_windows": (3, 10),
}  # fmt: skip
FLOATS = {"min_confidence_threshold": (0.05, 0.25), "dropout": (0.1, 0.5)}


def scorer_config(rng: random.Random, k: Knobs) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    for key, (low, high) in SPACE.items():
        span = high - low
        doc[key] = rng.randint(low + max(1, span // 5), high - max(1, span // 5))
    for key, (low, high) in FLOATS.items():
        span = high - low
        doc[key] = r4(rng.uniform(low + span * 0.2, high - span * 0.2))
    doc["hidden_layers"] = rng.choice(["128_64", "256_128_64", "512_256_128"])
    doc["learning_rate"] = round(10 ** rng.uniform(-3.6, -2.4), 6)
    doc["batch_size"] = rng.choice([32, 64, 128])
    doc |= k.get("set", {})
    for key in k.get("drop", ()):
        doc.pop(key, None)
    return doc


STEP25: list[Variant] = [
    *[good("clear", "best parameters well inside the search space") for _ in range(6)],
    good("borderline", "residue_mod_2 at the top of its range (the committed example)", set={"residue_mod_2": 150}),
    good("borderline", "temporal window at its upper bound", set={"temporal_window_size": 100}),
    good("extra", "newer release also records the trial number", set={"optuna_trial_number": 57}),
    good("extra", "and the sample size", set={"sample_size": 5000}),
    good("borderline", "learning rate near its lower bound", set={"learning_rate": 0.000102}),
    bad("clear", "residue_mod_1 outside 5-20", set={"residue_mod_1": 48}),
    bad("clear", "dropout 0.9: outside 0.1-0.5", set={"dropout": 0.9}),
    bad("clear", "unknown network shape", set={"hidden_layers": "1024_1024"}),
    bad("clear", "batch size not one of 32/64/128", set={"batch_size": 100}),
    bad("clear", "learning rate 0.5", set={"learning_rate": 0.5}),
    bad("borderline", "max_offset 16, one past its range", set={"max_offset": 16}),
    bad("borderline", "min_confidence_threshold 0.26", set={"min_confidence_threshold": 0.26}),
    bad("clear", "temporal windows 0", set={"temporal_num_windows": 0}),
    bad("extra", "a newer release's extra key, and dropout 0.05", set={"dropout": 0.05, "pruner": "median"}),
    bad("clear", "residue_mod_3 of 5000", set={"residue_mod_3": 5000}),
]


# --- step 3 (survivors_with_scores.json) -------------------------------------------------------------------------
def scored(rng: random.Random, k: Knobs) -> list[dict[str, Any]]:
    n, width = k.get("records", 55), k.get("features", len(FEATURES))
    quality_spread = k.get("spread", 0.25)
    rows = []
    for i in range(n):
        seed = rng.randrange(4_000_000_000)
        if i < k.get("failed", 0):
            rows.append({"seed": seed, "score": 0.0, "features": {}, "error": "CUDA error: out of memory"})
            continue
        feats = {name: r4(rng.uniform(0, 1)) for name in FEATURES[:width]}
        feats["score"] = r4(rng.uniform(0, 12))
        row: dict[str, Any] = {
            "seed": seed, "score": feats["score"], "features": feats,
            "metadata": {"prng_type": "java_lcg", "mod": 1000, "worker_hostname": f"node{i % 3}",
                         "worker_gpu": i % 2, "timestamp": 1773500000.0 + i},
            "holdout_hits": r4(rng.uniform(0, 0.05)),
            "holdout_quality": r4(0.4 + rng.uniform(-quality_spread, quality_spread)),
        }  # fmt: skip
        if k.get("no_quality"):
            row.pop("holdout_quality")
        rows.append(row)
    rows.sort(key=lambda r: -r["score"])
    return rows


STEP3: list[Variant] = [
    *[good("clear", "every seed scored, 91 features, varied holdout quality") for _ in range(6)],
    good("borderline", "one failed seed of 55 (1.8%)", failed=1),
    good("borderline", "68 features: an older feature set", features=68),
    good("soft", "holdout quality spread narrow (weak target for step 5)", spread=0.04),
    good("soft", "3 of 60 seeds failed (5%)", failed=3, records=60),
    good("clear", "a larger pool", records=80),
    bad("clear", "only 20 seeds scored", records=20),
    bad("clear", "a third of the seeds failed", failed=20, records=60),
    bad("clear", "no holdout_quality: records written before S111", no_quality=True),
    bad("clear", "40 features: below the step's own minimum of 46", features=40),
    bad("clear", "constant holdout quality: step 5 will see a degenerate target", spread=0.0),
    bad("borderline", "49 records", records=49),
    bad("borderline", "45 features", features=45),
    bad("soft", "6 of 55 seeds failed (11%)", failed=6),
    bad("missing", "an empty result", records=0),
    bad("clear", "nearly constant holdout quality", spread=0.000001),
]


# --- step 4 (reinforcement_engine_config.json) -------------------------------------------------------------------
def engine_config(rng: random.Random, k: Knobs) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "model": {"input_dim": 89, "hidden_layers": k.get("layers", [256, 128, 64]), "dropout": 0.3},
        "training": {"learning_rate": 0.001, "batch_size": 256, "epochs": k.get("epochs", 150),
                     "early_stopping_patience": 10},
        "prng": {"prng_type": "java_lcg", "mod": 1000, "skip": 0},
        "global_state": {"window_size": 100}, "normalization": {"enabled": True},
        "survivor_pool": {"max_pool_size": k.get("pool", rng.randint(350, 900)), "prune_threshold": 0.3,
                          "min_confidence": 0.5, "update_frequency": 10},
        "output": {"models_dir": "models/reinforcement", "log_dir": "logs/reinforcement"},
        "_meta_optimizer": {"last_calibration": stamp(rng), "calibration_type": "full",
                            "confidence": k.get("confidence", r4(rng.uniform(0.75, 0.95))),
                            "weights_used": {"window_optimizer": 0.6, "historical_patterns": 0.35,
                                             "reinforcement_feedback": 0.05}},
    }  # fmt: skip
    for key in k.get("drop", ()):
        doc.pop(key, None)
    return doc


STEP4: list[Variant] = [
    *[good("clear", "pool and epochs inside the manifest's bounds") for _ in range(6)],
    good("borderline", "pool of 105, just above 100", pool=105),
    good("borderline", "480 epochs, near the 500 ceiling", epochs=480),
    good("soft", "meta-optimizer confidence 0.6", confidence=0.6),
    good("missing", "not calibrated by step 4 yet: no _meta_optimizer block", drop=["_meta_optimizer"]),
    good("clear", "a smaller network", layers=[128, 64]),
    bad("clear", "pool of 40 survivors", pool=40),
    bad("clear", "pool of 50000", pool=50000),
    bad("clear", "10 epochs", epochs=10),
    bad("clear", "2000 epochs", epochs=2000),
    bad("clear", "no hidden layers", layers=[]),
    bad("borderline", "pool of 99", pool=99),
    bad("borderline", "501 epochs", epochs=501),
    bad("soft", "confidence 0.3: the optimizer fell back to defaults", confidence=0.3),
    bad("clear", "a layer of width 0", layers=[256, 0]),
    bad("borderline", "49 epochs", epochs=49),
]


# --- step 5 (models/reinforcement/best_model.meta.json) -----------------------------------------------------------
def sidecar(rng: random.Random, k: Knobs) -> dict[str, Any]:
    status = k.get("signal", "healthy")
    names = sorted(n for n in FEATURES if n not in ("score", "confidence"))
    variance = {"healthy": 0.02, "weak": 0.0005, "degenerate": 0.0}[status]
    doc: dict[str, Any] = {
        "schema_version": "3.4.0", "model_type": k.get("model", "catboost"),
        "checkpoint_path": "models/reinforcement/best_model.cbm", "checkpoint_format": "cbm",
        "feature_schema": {"source_file": "survivors_with_scores.json", "feature_count": len(names),
                           "feature_names": names, "ordering": "lexicographic_by_key",
                           "feature_schema_hash": "%016x" % rng.getrandbits(64),
                           "excluded_features": ["score", "confidence", "holdout_hits", "holdout_quality"]},
        "signal_quality": {"target_name": "holdout_quality", "signal_status": status,
                           "signal_confidence": {"healthy": 0.7, "weak": 0.4, "degenerate": 0.0}[status],
                           "prediction_allowed": k.get("allowed", status != "degenerate"),
                           "unique_target_values": 1 if status == "degenerate" else 900,
                           "target_variance": variance, "target_mean": 0.41, "target_std": r4(math.sqrt(variance)),
                           "nonzero_count": 980, "nonzero_ratio": 0.98, "sample_size": 1000},
        "data_context": {"fingerprint_hash": "%08x" % rng.getrandbits(32), "fingerprint_version": "v2_data_only",
                         "survivor_source": {"file": "survivors_with_scores.json", "survivor_count": 1000}},
        "training_metrics": {"r2": k.get("r2", r4(rng.uniform(0.62, 0.85))), "train_mae": 0.041, "val_mae": 0.046,
                             "test_mae": 0.047, "overfit_ratio": k.get("ratio", r4(rng.uniform(0.95, 1.15)))},
        "hyperparameters": {"depth": 6, "learning_rate": 0.05, "iterations": 800},
        "hardware": {"device_requested": "cuda", "cuda_available": True},
        "training_info": {"started_at": stamp(rng), "completed_at": stamp(rng), "duration_seconds": 812.4},
        "agent_metadata": {"pipeline_step": 5, "pipeline_step_name": "anti_overfit_training",
                           "run_id": "step5_20260315_101500", "parent_run_id": None},
    }  # fmt: skip
    if status == "degenerate":
        doc["training_metrics"] = {"status": "degenerate_signal", "r2": 0.0, "train_mse": None, "val_mse": None,
                                   "error": "target has a single value"}  # fmt: skip
        doc["model_type"] = None
    for key in k.get("drop", ()):
        parent, _, leaf = key.rpartition(".")
        (doc[parent] if parent else doc).pop(leaf, None)
    return doc


STEP5: list[Variant] = [
    *[good("clear", "healthy signal, validation close to training") for _ in range(6)],
    good("borderline", "overfit ratio 1.28, just under the 1.3 warning", ratio=1.28),
    good("borderline", "r2 0.53, just above 0.5", r2=0.53),
    good("soft", "overfit ratio 1.38: the health check's warning band", ratio=1.38),
    good("missing", "compare-mode sidecar without overfit ratio", drop=["training_metrics.overfit_ratio"]),
    good("clear", "neural net winner", model="neural_net"),
    bad("clear", "degenerate target: the script exited 2", signal="degenerate"),
    bad("clear", "overfit ratio 1.9", ratio=1.9),
    bad("clear", "r2 0.2", r2=0.2),
    bad("clear", "prediction not allowed", allowed=False),
    bad("borderline", "overfit ratio 1.52, past the 1.5 critical line", ratio=1.52),
    bad("borderline", "r2 0.48", r2=0.48),
    bad("soft", "weak signal and r2 below 0.5", signal="weak", r2=0.41),
    bad("missing", "no overfit ratio recorded, r2 0.3", drop=["training_metrics.overfit_ratio"], r2=0.3),
    bad("clear", "underfit and weak", ratio=0.5, r2=0.3),
    bad("clear", "overfit and weak", ratio=1.7, r2=0.45),
]


# --- step 6 (predictions/next_draw_prediction.json) --------------------------------------------------------------
def prediction(rng: random.Random, k: Knobs) -> dict[str, Any]:
    if k.get("skipped"):
        return {
            "status": "PREDICTION_SKIPPED", "reason": "degenerate",
            "signal_quality": {"signal_status": "degenerate", "prediction_allowed": False},
            "data_context": {"fingerprint_hash": "1a2b3c4d"},
            "explanation": "Model training skipped due to degenerate signal", "recovery_authority": "WATCHER_AGENT",
            "timestamp": stamp(rng),
            "agent_metadata": {"pipeline_step": 6, "pipeline_step_name": "prediction_generator", "confidence": 0.5},
        }  # fmt: skip
    n = k.get("n", 20)
    raw = sorted((rng.uniform(0.3, 0.6) for _ in range(n)), reverse=True)
    if k.get("constant"):
        raw = [0.42] * n
    if "levels" in k:  # a nearly constant model output: a few distinct scores
        raw = sorted((rng.choice(k["levels"]) for _ in range(n)), reverse=True)
    mean = sum(raw) / n if n else 0
    std = math.sqrt(sum((x - mean) ** 2 for x in raw) / n) if n else 0
    conf = [r4(1 / (1 + math.exp(-(x - mean) / std))) if std else 0.5 for x in raw]
    if "shift" in k:
        conf = [r4(min(1.0, max(0.0, c + k["shift"]))) for c in conf]
    picks = rng.sample(range(k.get("top", 1000)), n)
    doc = {
        "status": "success", "predictions": picks, "raw_scores": [r4(x) for x in raw],
        "confidence_scores": conf[: k.get("conf_n", n)],
        "confidence_scores_normalized": [r4(x / max(raw)) for x in raw] if raw else [],
        "metadata": {"method": "dual_sieve", "pool_size": 20, "k": 20, "forward_count": 1400, "reverse_count": 1300,
                     "intersection_count": 700, "prng_type": "java_lcg", "mod": 1000, "model_type": "catboost",
                     "feature_count": 89, "timestamp": stamp(rng),
                     "score_stats": {"raw_min": r4(min(raw, default=0)), "raw_max": r4(max(raw, default=0)),
                                     "raw_mean": r4(mean), "raw_std": r4(std), "raw_unique": len(set(raw))},
                     "version": "6.0"},
        "agent_metadata": {"pipeline_step": 6, "pipeline_step_name": "prediction_generator",
                           "confidence": r4(sum(conf) / len(conf)) if conf else 0.5},
    }  # fmt: skip
    return doc


STEP6: list[Variant] = [
    *[good("clear", "20 predictions, spread scores, aligned confidences") for _ in range(6)],
    good("borderline", "5 predictions, the manifest's minimum pool", n=5),
    good("borderline", "mean confidence 0.47", shift=-0.03),
    good("soft", "mean confidence 0.42: a flat ranking", shift=-0.08),
    good("clear", "a pool of 50", n=50),
    good("extra", "the two-prediction smoke-test output, padded to five", n=6),
    bad("clear", "PREDICTION_SKIPPED: degenerate signal", skipped=True),
    bad("clear", "constant model output: every confidence 0.5", constant=True),
    bad("clear", "3 predictions", n=3),
    bad("clear", "no prediction at all", n=0),
    bad("clear", "confidences do not line up with the predictions", conf_n=12),
    bad("borderline", "4 predictions", n=4),
    bad("soft", "mean confidence 0.3", shift=-0.2),
    bad("clear", "draw numbers outside 0-999", top=5000),
    bad("clear", "PREDICTION_SKIPPED again", skipped=True),
    bad("borderline", "mean confidence 0.34", shift=-0.16),
]

Builder = Callable[[random.Random, Knobs], Any]
STEPS: dict[str, tuple[str, Builder, list[Variant]]] = {
    "2": ("bidirectional_survivors.json", survivors, STEP2),
    "2.5": ("optimal_scorer_config.json", scorer_config, STEP25),
    "3": ("survivors_with_scores.json", scored, STEP3),
    "4": ("reinforcement_engine_config.json", engine_config, STEP4),
    "5": ("best_model.meta.json", sidecar, STEP5),
    "6": ("next_draw_prediction.json", prediction, STEP6),
}


def dump(file: Path, doc: Any, compact: bool) -> None:
    file.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(doc, separators=(",", ":")) if compact else json.dumps(doc, indent=2)
    file.write_text(text + "\n", encoding="utf-8")


def write_step1(rng: random.Random, folder: Path, knobs: Knobs, waiting: bool = False) -> None:
    if waiting:
        dump(folder / "optimal_window_config.json", in_progress(rng, knobs), False)
        return
    dump(folder / "optimal_window_config.json", window_config(rng, knobs), False)
    survivor_knobs = knobs.get("survivors", {})
    if survivor_knobs is not None:
        dump(folder / "bidirectional_survivors.json", survivors(rng, survivor_knobs), True)


def write_case(rng: random.Random, step: str, variant: Variant, name: str) -> dict[str, Any]:
    """One labelled output (for step 1 a case folder with its survivors), and its manifest entry."""
    label, kind, note, knobs = variant
    if step == "1":
        case = LABELLED / "step1" / label / name
        write_step1(rng, case, knobs, waiting=label == "in_progress")
        file = case / "optimal_window_config.json"
    else:
        file = LABELLED / f"step{step}" / label / f"{name}.json"
        doc = STEPS[step][1](rng, knobs)
        if knobs.get("extra_key") and isinstance(doc, list):
            for record in doc:
                record[knobs["extra_key"]] = 0.5
        dump(file, doc, compact=isinstance(doc, list))
    return {"file": str(file.relative_to(LABELLED)), "step": step, "label": label, "kind": kind, "note": note}


def labelled(rng: random.Random) -> list[dict[str, Any]]:
    shutil.rmtree(LABELLED, ignore_errors=True)
    counters: dict[tuple[str, str, str], int] = {}

    def name(step: str, label: str, kind: str) -> str:
        counters[(step, label, kind)] = counters.get((step, label, kind), 0) + 1
        return f"{kind}_{counters[(step, label, kind)]:02d}"

    cases = [("1", v) for v in [*STEP1, *STEP1_WAITING]] + [(s, v) for s, (_, _, vs) in STEPS.items() for v in vs]
    manifest = [write_case(rng, step, v, name(step, v[0], v[1])) for step, v in cases]
    # The open cases from a generator of their own, so the cases above keep their bytes.
    opened = random.Random(SEED + 16)
    manifest += [write_case(opened, step, v, name(step, v[0], v[1])) for step, vs in OPEN.items() for v in vs]
    return manifest


INVALID: dict[str, Callable[[Any], Any]] = {
    # Each breaks a required key: missing, or of the wrong type.
    "1": lambda d: {k: v for k, v in d.items() if k != "bidirectional_count"},
    "2": lambda d: [{**r, "seed": str(r["seed"])} for r in d],
    "2.5": lambda d: {**d, "residue_mod_1": "seventeen"},
    "3": lambda d: [{k: v for k, v in r.items() if k != "features"} for r in d],
    "4": lambda d: {**d, "training": {**d["training"], "epochs": "150"}},
    "5": lambda d: {k: v for k, v in d.items() if k != "signal_quality"},
    "6": lambda d: {**d, "predictions": "436,429"},
}


def canonical(rng: random.Random) -> None:
    """The step<K>_{good,bad,invalid}.json files the tests and docs use, and step 1's survivors beside them."""
    goods: dict[str, Any] = {"1": window_config(rng, {"bi": 3100, "seeds": 500_000, "fwd": 6000, "rev": 5600})}
    bads: dict[str, Any] = {"1": window_config(rng, {"rate": 0.25})}
    for step, (_, build, variants) in STEPS.items():
        goods[step] = build(rng, {})
        bads[step] = build(rng, next(k for label, kind, _, k in variants if label == "bad" and kind == "clear"))
    for step in ("1", *STEPS):
        compact = isinstance(goods[step], list)
        dump(HERE / f"step{step}_good.json", goods[step], compact)
        dump(HERE / f"step{step}_bad.json", bads[step], compact)
        dump(HERE / f"step{step}_invalid.json", INVALID[step](goods[step]), compact)
    dump(HERE / "bidirectional_survivors.json", goods["2"], True)
    dump(HERE / "step1_in_progress.json", in_progress(rng, {"done": 7}), False)


# --- open cases: the checks leave them to judgement and the label follows from the step's documented meaning, not
# from one threshold. A good one fails a check softly or passes within the margin; a bad one fails softly, so the
# checks alone never let it proceed (step 2.5 has only hard range checks: it gets good ones only). Written with
# their own generator so the rest of the set keeps its bytes.
def opened(label: str, note: str, **knobs: Any) -> Variant:
    return (label, "open", note, knobs)


OPEN: dict[str, list[Variant]] = {
    "1": [
        opened(
            "good",
            "6% survive, but the overlap is strong (0.7) and all 50 trials completed: the loose band the "
            "step's context calls usable (proceed, medium confidence) with every other number sound",
            seeds=500_000,
            bi=30_000,
            fwd=42_000,
            rev=43_000,
            total=50,
            done=50,
        ),
        opened(
            "good",
            "overlap 0.21, yet only 0.3% of the seeds survive both sieves: the intersection removed what "
            "each direction let through; the step's context judges the bidirectional rate and count, both healthy",
            seeds=1_000_000,
            bi=3000,
            fwd=15_000,
            rev=14_000,
        ),
        opened(
            "bad",
            "7% survive and the directions overlap only 0.22: loose thresholds and disagreeing directions "
            "at once, the guardrail's retry case",
            seeds=500_000,
            bi=35_000,
            fwd=170_000,
            rev=160_000,
        ),
        opened(
            "bad",
            "8% survive and only 12 of 50 trials completed: loose, and the search stopped early; retry "
            "with tighter thresholds",
            rate=0.08,
            total=50,
            done=12,
        ),
    ],
    "2": [
        opened(
            "good",
            "intersection ratio 0.46 over 400 survivors whose per-seed rates are all well above the "
            "sieve threshold: plenty of strong seeds, so the investigate flag alone does not stop the run",
            records=400,
            intersection_ratio=0.46,
            rate_low=0.5,
            rate_high=0.95,
        ),
        opened(
            "good",
            "89% of 400 survivors above the sieve threshold and an intersection of 0.8: a tail of weaker "
            "seeds among many strong ones, which step 3's scoring ranks low",
            records=400,
            intersection_ratio=0.8,
            rate_low=0.02,
            rate_high=0.85,
        ),
        opened(
            "bad",
            "intersection ratio 0.41 and a quarter of the survivors under the sieve threshold: the "
            "directions disagree and the seeds are weak, a person should look",
            records=120,
            intersection_ratio=0.41,
            rate_low=0.05,
            rate_high=0.75,
        ),
        opened(
            "bad",
            "54 survivors with an intersection of 0.44: too few seeds from directions that disagree",
            records=54,
            intersection_ratio=0.44,
        ),
    ],
    "2.5": [
        opened(
            "good",
            "residue_mod_1 at its lower bound, the rest well inside: one edge value, proceed with a note",
            set={"residue_mod_1": 5},
        ),
        opened(
            "good",
            "learning rate at its upper bound with the largest network: one edge value",
            set={"learning_rate": 0.01, "hidden_layers": "512_256_128"},
        ),
    ],
    "3": [
        opened(
            "good",
            "8 of 200 seeds failed (4%), full features, a varied holdout quality: a few failed seeds are tolerable",
            records=200,
            failed=8,
        ),
        opened(
            "good",
            "58 features (an older release) on 150 seeds, none failed, a varied holdout quality: above "
            "the step's own floor of 46, step 5 trains on what is there",
            records=150,
            features=58,
        ),
        opened(
            "bad",
            "5% of the seeds failed and the holdout quality barely varies: workers failed and what remains "
            "gives step 5 a weak target",
            records=120,
            failed=6,
            spread=0.045,
        ),
        opened(
            "bad",
            "56 features and 4% of the seeds failed: two soft problems together, retry the scoring",
            records=100,
            failed=4,
            features=56,
        ),
    ],
    "4": [
        opened(
            "good",
            "calibration confidence 0.62 with a pool, epochs and network well inside their ranges: less "
            "sure, but sensible values",
            confidence=0.62,
            pool=600,
            epochs=150,
        ),
        opened(
            "good",
            "confidence 0.66, 200 epochs, a pool of 2000: sensible values",
            confidence=0.66,
            pool=2000,
            epochs=200,
        ),
        opened(
            "bad",
            "confidence 0.55 and a pool and epochs at the edges of their ranges: a fallback calibration",
            confidence=0.55,
            pool=105,
            epochs=490,
        ),
        opened(
            "bad",
            "confidence 0.52, 55 epochs and a pool of 110: low confidence and values at their floors",
            confidence=0.52,
            pool=110,
            epochs=55,
        ),
    ],
    "5": [
        opened(
            "good",
            "weak target, but a validation r2 of 0.78 and an overfit ratio of 1.02: the model learned "
            "the signal there is, and prediction is allowed",
            signal="weak",
            r2=0.78,
            ratio=1.02,
        ),
        opened(
            "good",
            "overfit ratio 1.35 with a healthy target and r2 0.81: in the warning band, but the "
            "validation fit is strong (the step's context calls up to 1.5 healthy)",
            ratio=1.35,
            r2=0.81,
        ),
        opened(
            "bad",
            "weak target, overfit ratio a fine 1.0, but r2 only 0.52: a barely passing fit of a weak signal, retrain",
            signal="weak",
            r2=0.52,
            ratio=1.0,
        ),
        opened(
            "bad",
            "overfit ratio 1.46 and r2 0.53: close to the critical line with a barely passing fit",
            ratio=1.46,
            r2=0.53,
        ),
    ],
    "6": [
        opened(
            "good",
            "mean confidence 0.43 over a pool of 50 with spread scores: a slightly flat ranking, usable",
            n=50,
            shift=-0.07,
        ),
        opened("good", "5 predictions, the minimum pool, with spread scores and a mean confidence of 0.5", n=5),
        opened(
            "bad",
            "only 2 distinct model scores among 20 predictions and a mean confidence of 0.42: a nearly "
            "constant output, the ranking means little",
            levels=[0.41, 0.42],
            shift=-0.08,
        ),
        opened(
            "bad",
            "mean confidence 0.4 over the minimum pool of 5: a flat ranking with nothing to choose from",
            n=5,
            shift=-0.1,
        ),
    ],
}


def main() -> int:
    rng = random.Random(SEED)
    for old in HERE.glob("step*.json"):
        old.unlink()
    canonical(rng)
    manifest = labelled(rng)
    (LABELLED / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {len(manifest)} labelled files and the step examples under {HERE}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Writes the labelled step outputs: ``step<N>/{good,bad}/<kind>_<nn>.json`` and ``manifest.json``.

Every file is built from ``examples/step_outputs/step<N>_good.json`` with a few knobs changed and the derived
fields (rates, gaps, distributions) recomputed, so each document is internally consistent. The random jitter is
seeded: running this again writes the same bytes. Run from anywhere:
``python examples/step_outputs/labelled/generate.py``.

Kinds: ``clear`` (unmistakably good or bad), ``borderline`` (a value just inside or just outside a threshold),
``soft`` (only a soft signal is off: tolerable when good, a real problem when bad), ``missing`` (optional fields
absent). Every file is valid against its step's schema; the label is the ground truth a careful reviewer would give.
"""

from __future__ import annotations

import copy
import json
import random
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
EXAMPLES = HERE.parent
SEED = 20250614
Doc = dict[str, Any]
Knobs = dict[str, Any]
# (label, kind, note, knobs); knobs override the healthy random defaults; "drop" lists paths to delete and
# "warnings" replaces the warnings the step logged.
Variant = tuple[str, str, str, Knobs]


def good(kind: str, note: str, **knobs: Any) -> Variant:
    return ("good", kind, note, knobs)


def bad(kind: str, note: str, **knobs: Any) -> Variant:
    return ("bad", kind, note, knobs)


def r4(x: float) -> float:
    return round(x, 4)


def clip(x: float) -> float:
    return r4(min(1.0, max(0.0, x)))


def drop(doc: Doc, paths: list[str]) -> None:
    for path in paths:
        *parents, last = path.split(".")
        node = doc
        for key in parents:
            node = node[key]
        node.pop(last, None)


# --- step 1: window optimizer ----------------------------------------------------------------------------------
def healthy1(rng: random.Random) -> Knobs:
    run = rng.choice([48, 64, 96])
    return {
        "score": rng.uniform(0.72, 0.9),
        "std": rng.uniform(0.005, 0.03),
        "run": run,
        "failed": rng.randint(0, run // 20),
        "size": rng.choice([64, 80, 96, 112, 128]),
        "offset": rng.randint(0, 24),
    }


def build1(doc: Doc, k: Knobs) -> None:
    run, failed = k["run"], k["failed"]
    doc["trials"] = {
        "planned": max(run, 64),
        "run": run,
        "failed": failed,
        "failure_rate": r4(failed / run if run else 0),
    }
    doc["best"].update(
        window_size=k["size"],
        offset=k["offset"],
        score=r4(k["score"]),
        score_std=r4(k["std"]),
        trial_index=max(0, run // 2),
    )
    doc["top_trials"] = [
        {"window_size": k["size"] + 16 * i, "offset": k["offset"], "score": r4(k["score"] - 0.006 * i)}
        for i in range(3)
    ]


STEP1: list[Variant] = [
    *[good("clear", "healthy search") for _ in range(5)],
    good("clear", "a small search of 24 trials that converged", run=24, failed=0),
    good("borderline", "best score just above 0.60", score=0.63),
    good("borderline", "failure rate just under 10%", run=64, failed=6),
    good("soft", "slightly noisy optimum, strong score", std=0.058, score=0.84),
    good("missing", "no top trials or warnings reported", drop=["top_trials", "warnings"]),
    good("missing", "fold spread not reported", drop=["best.score_std"]),
    bad("clear", "no usable window", score=0.41),
    bad("clear", "almost half the trials failed", run=64, failed=29, warnings=["29 trials failed: CUDA out of memory"]),
    bad("clear", "search stopped after 6 trials", run=6, failed=2),
    bad("clear", "weak, unstable, many failures", score=0.52, std=0.11, run=64, failed=16),
    bad("borderline", "best score just below 0.60", score=0.585),
    bad("borderline", "failure rate just over 10%", run=64, failed=7),
    bad("borderline", "18 trials: search too small", run=18, failed=0),
    bad("soft", "optimum is noise: fold spread 0.14", std=0.14, score=0.76),
    bad(
        "missing",
        "every trial failed, no best window",
        run=64,
        failed=64,
        drop=["best", "top_trials"],
        warnings=["64 trials failed: dataset shard unreadable"],
    ),
    bad("missing", "aborted before the first trial", run=0, failed=0, drop=["best", "top_trials"]),
]


# --- step 2: bidirectional sieve -------------------------------------------------------------------------------
def healthy2(rng: random.Random) -> Knobs:
    n = rng.choice([180000, 250000, 320000])
    fwd, rev = int(n * rng.uniform(0.06, 0.1)), int(n * rng.uniform(0.06, 0.1))
    return {"input": n, "fwd": fwd, "rev": rev, "bi": int(min(fwd, rev) * rng.uniform(0.38, 0.6))}


def build2(doc: Doc, k: Knobs) -> None:
    n, fwd, rev, bi = k["input"], k["fwd"], k["rev"], k["bi"]
    doc["input_candidates"] = n
    doc["forward"]["survivors"], doc["reverse"]["survivors"] = fwd, rev
    doc["bidirectional"] = {
        "survivors": bi,
        "survival_rate": r4(bi / n) if bi / n >= 0.001 else round(bi / n, 6),
        "agreement": r4(bi / max(1, min(fwd, rev))),
    }


STEP2: list[Variant] = [
    *[good("clear", "healthy sieve") for _ in range(5)],
    good("borderline", "530 survivors, just above the floor", input=20000, fwd=1500, rev=1300, bi=530),
    good("borderline", "46000 survivors, near the ceiling", input=400000, fwd=90000, rev=85000, bi=46000),
    good("borderline", "directions agree on 27%", input=250000, fwd=20000, rev=19000, bi=5130),
    good("soft", "huge input, low rate, ample survivors", input=3000000, fwd=60000, rev=52000, bi=5400),
    good("missing", "ratios not reported", drop=["bidirectional.survival_rate", "bidirectional.agreement"]),
    good("missing", "timings and warnings not reported", drop=["elapsed_sec", "warnings"]),
    bad("clear", "37 survivors: sieve far too strict", input=250000, fwd=1840, rev=96, bi=37),
    bad("clear", "nothing survived", input=250000, fwd=310, rev=0, bi=0, warnings=["reverse pass kept no candidate"]),
    bad("clear", "sieve kept 72% of the input", input=250000, fwd=230000, rev=226000, bi=180000),
    bad("clear", "only 4000 candidates went in", input=4000, fwd=900, rev=850, bi=600),
    bad("borderline", "470 survivors", input=250000, fwd=1400, rev=1300, bi=470),
    bad("borderline", "52000 survivors", input=400000, fwd=98000, rev=96000, bi=52000),
    bad("borderline", "9500 candidates went in", input=9500, fwd=2100, rev=1900, bi=900),
    bad("soft", "directions agree on 6%: inconsistent sieve", input=250000, fwd=21000, rev=20000, bi=1200),
    bad(
        "missing",
        "reverse pass crashed",
        drop=["reverse", "bidirectional"],
        warnings=["reverse pass aborted: worker killed (signal 9)"],
    ),
    bad("missing", "join of the two directions never written", drop=["bidirectional"]),
]


# --- step 3: full scoring --------------------------------------------------------------------------------------
def healthy3(rng: random.Random) -> Knobs:
    n = rng.choice([6000, 9614, 14000])
    return {
        "input": n,
        "failed": rng.randint(0, n // 200),
        "nan": 0,
        "std": rng.uniform(0.12, 0.2),
        "mean": rng.uniform(0.38, 0.46),
    }


def build3(doc: Doc, k: Knobs) -> None:
    n, failed, mean, std = k["input"], k["failed"], k["mean"], k["std"]
    doc["candidates"] = {
        "input": n,
        "scored": n - failed,
        "failed": failed,
        "failure_rate": r4(failed / n if n else 0),
        "nan_scores": k["nan"],
    }
    p90 = k.get("p90", mean + 1.28 * std)
    doc["score_distribution"] = {
        "min": clip(mean - 2.4 * std),
        "p50": clip(mean - 0.1 * std),
        "mean": clip(mean),
        "p90": clip(p90),
        "p99": clip(max(p90, mean + 2.3 * std)),
        "max": clip(max(p90, mean + 3.1 * std)),
        "std": r4(std),
    }
    doc["warnings"] = [f"{failed} candidates skipped: sequence shorter than window"] if failed else []
    top = doc["score_distribution"]["max"]
    doc["top_candidates"] = [
        {"id": f"cand-{1000 + 37 * i:06d}", "score": r4(top - 0.004 * i), "rank": i + 1} for i in range(3)
    ]


STEP3: list[Variant] = [
    *[good("clear", "healthy scoring") for _ in range(5)],
    good("borderline", "1.9% failed to score", input=9614, failed=183),
    good("borderline", "545 candidates, 540 scored", input=545, failed=5),
    good("borderline", "narrow but real spread (std 0.021)", std=0.021, mean=0.52),
    good("soft", "hard dataset: top decile at 0.47", mean=0.3, std=0.12, p90=0.47),
    good("missing", "top candidates not listed", drop=["top_candidates"]),
    bad("clear", "NaNs, failures and constant scores", failed=775, nan=412, std=0.0031, mean=0.5),
    bad("clear", "35% of candidates failed", input=9614, failed=3365),
    bad("clear", "every score 0.5", std=0.0, mean=0.5),
    bad("clear", "only 120 scored", input=130, failed=10),
    bad("borderline", "2.2% failed to score", input=9614, failed=212),
    bad("borderline", "spread 0.018: nearly constant", std=0.018, mean=0.5),
    bad("borderline", "a single NaN score", nan=1),
    bad("soft", "scores squashed near zero: mis-normalised scorer", mean=0.1, std=0.06, p90=0.18),
    bad("missing", "scorer crashed before the summary", drop=["score_distribution", "top_candidates"]),
    bad(
        "missing",
        "nothing scored, no distribution",
        input=9614,
        failed=9614,
        drop=["score_distribution", "top_candidates"],
    ),
]


# --- step 4: ML meta model -------------------------------------------------------------------------------------
def healthy4(rng: random.Random) -> Knobs:
    return {
        "mean": rng.uniform(0.78, 0.9),
        "std": rng.uniform(0.01, 0.03),
        "baseline": 0.5,
        "metric": "roc_auc",
        "samples": rng.choice([6000, 9601, 14000]),
        "top": rng.uniform(0.12, 0.3),
    }


def build4(doc: Doc, k: Knobs) -> None:
    mean, std, top = k["mean"], k["std"], k["top"]
    spread = [-1.2, 0.6, -0.3, 1.1, -0.2]
    doc["data"]["train_samples"] = k["samples"]
    doc["cross_validation"] = {
        "folds": 5,
        "metric": k["metric"],
        "mean": r4(mean),
        "std": r4(std),
        "fold_scores": [r4(min(1.0, max(0.0, mean + d * std))) for d in spread],
    }
    doc["baseline_score"], doc["lift_over_baseline"] = k["baseline"], r4(mean - k["baseline"])
    doc["top_feature_share"] = r4(top)
    names = [k.get("top_feature", "motif_density"), "gc_content", "window_entropy"]
    doc["feature_importance"] = [{"feature": f, "importance": r4(top * 0.7**i)} for i, f in enumerate(names)]


STEP4: list[Variant] = [
    *[good("clear", "healthy meta model") for _ in range(5)],
    good("clear", "accuracy 0.93 over a 0.858 majority baseline", metric="accuracy", mean=0.93, baseline=0.858),
    good("borderline", "AUC 0.672, just above 0.65", mean=0.672),
    good("borderline", "lift 0.052 over a strong baseline", metric="accuracy", mean=0.91, baseline=0.858),
    good("borderline", "1030 training samples", samples=1030),
    good("soft", "noisy folds (std 0.065), solid mean", std=0.065, mean=0.82),
    good("missing", "fold details not reported", drop=["cross_validation.std", "cross_validation.fold_scores"]),
    good("missing", "no warnings or feature list reported", drop=["warnings", "feature_importance"]),
    bad("clear", "AUC 0.56: barely better than chance", mean=0.561, std=0.074),
    bad("clear", "AUC 0.51, no lift", mean=0.51),
    bad("clear", "240 training samples", samples=240, mean=0.8),
    bad("clear", "worse than its baseline", mean=0.43, std=0.05),
    bad("borderline", "AUC 0.641", mean=0.641),
    bad("borderline", "lift 0.046 over a strong baseline", metric="accuracy", mean=0.904, baseline=0.858),
    bad("borderline", "960 training samples", samples=960),
    bad(
        "soft",
        "AUC 0.997 from one id-like feature: leakage",
        mean=0.997,
        std=0.002,
        top=0.93,
        top_feature="sample_id_hash",
    ),
    bad("soft", "folds range from 0.57 to 0.91", mean=0.74, std=0.14),
    bad("missing", "no baseline evaluated", mean=0.66, drop=["baseline_score", "lift_over_baseline"]),
]


# --- step 5: anti-overfit training -----------------------------------------------------------------------------
def healthy5(rng: random.Random) -> Knobs:
    val, best = rng.uniform(0.82, 0.9), rng.randint(40, 90)
    return {
        "val": val,
        "gap": rng.uniform(0.005, 0.03),
        "test": val - rng.uniform(0.0, 0.01),
        "train_loss": rng.uniform(0.28, 0.36),
        "ratio": rng.uniform(1.03, 1.15),
        "best": best,
        "completed": min(200, best + 12),
    }


def build5(doc: Doc, k: Knobs) -> None:
    val, gap, tl, ratio = k["val"], k["gap"], k["train_loss"], k["ratio"]
    doc["epochs"] = {"max": 200, "completed": k["completed"], "best": k["best"]}
    doc["metrics"] = {
        "train": {"loss": r4(tl), "auc": r4(val + gap), "accuracy": r4(val + gap - 0.022)},
        "validation": {"loss": r4(tl * ratio), "auc": r4(val), "accuracy": r4(val - 0.02)},
        "test": {"loss": r4(tl * ratio * 1.02), "auc": r4(k["test"]), "accuracy": r4(k["test"] - 0.02)},
    }
    doc["generalization_gap"] = {"loss": r4(tl * ratio - tl), "auc": r4(gap)}
    doc["overfit_ratio"] = r4(ratio)


STEP5: list[Variant] = [
    *[good("clear", "healthy training with early stopping") for _ in range(5)],
    good("clear", "validation slightly above train thanks to dropout", gap=-0.01),
    good("borderline", "gap 0.047", gap=0.047),
    good("borderline", "validation AUC 0.74", val=0.74, test=0.735),
    good("borderline", "validation loss 1.2 x train", ratio=1.2),
    good("soft", "no test split this run", drop=["metrics.test"]),
    good("missing", "no warnings reported, no augmentation", drop=["warnings", "regularization.augmentation"]),
    bad(
        "clear",
        "memorised the training set",
        val=0.712,
        gap=0.282,
        ratio=14.9,
        best=23,
        completed=200,
        train_loss=0.041,
    ),
    bad("clear", "underfit: validation AUC 0.58", val=0.58, test=0.57),
    bad("clear", "diverged after epoch 1", best=1, completed=13),
    bad("clear", "gap 0.15, loss ratio 2.1", val=0.78, test=0.77, gap=0.15, ratio=2.1),
    bad("borderline", "gap 0.056", gap=0.056),
    bad("borderline", "validation AUC 0.69", val=0.69, test=0.68),
    bad("borderline", "best epoch 2", best=2, completed=14),
    bad("soft", "test AUC 0.61 far below validation: tuned on validation", test=0.61, ratio=1.6),
    bad(
        "missing",
        "trained without a validation split",
        drop=["metrics.validation", "generalization_gap", "overfit_ratio"],
    ),
    bad("missing", "gap not reported: overfitting unverifiable", drop=["generalization_gap"]),
]


# --- step 6: prediction generation ------------------------------------------------------------------------------
def healthy6(rng: random.Random) -> Knobs:
    n = rng.choice([20000, 50000, 120000])
    return {
        "requested": n,
        "failed": rng.randint(0, n // 500),
        "conf": rng.uniform(0.72, 0.85),
        "psi": rng.uniform(0.01, 0.08),
        "positive": rng.uniform(0.08, 0.2),
    }


def build6(doc: Doc, k: Knobs) -> None:
    n, failed, conf = k["requested"], k["failed"], k["conf"]
    doc.update(
        requested=n,
        produced=n - failed,
        failed=failed,
        coverage=r4(1 - failed / n if n else 1),
        failure_rate=r4(failed / n if n else 0),
        positive_share=r4(k["positive"]),
    )
    doc["confidence"] = {"mean": r4(conf), "min": 0.5, "p10": r4(max(0.5, conf - 0.17)), "p90": r4(min(1, conf + 0.14))}
    doc["warnings"] = [f"{failed} sequences skipped: contain non-ACGT characters"] if failed else []
    doc["distribution_shift"]["psi"] = r4(k["psi"])
    doc["distribution_shift"]["ks_statistic"] = r4(min(1.0, k["psi"] * 0.6))


STEP6: list[Variant] = [
    *[good("clear", "healthy prediction batch") for _ in range(5)],
    good("borderline", "1.85% failed", requested=50000, failed=925),
    good("borderline", "PSI 0.232: noticeable but tolerable drift", psi=0.232),
    good("borderline", "a small batch of 105", requested=105, failed=0),
    good("soft", "hard batch: mean confidence 0.58", conf=0.58),
    good("missing", "no top predictions or warnings listed", drop=["top_predictions", "warnings"]),
    bad("clear", "29% failed and drifted inputs", requested=50000, failed=14590, psi=0.412),
    bad("clear", "45% failed", requested=20000, failed=9000),
    bad("clear", "PSI 0.61: a different population", psi=0.61),
    bad("clear", "empty batch", requested=0, failed=0, drop=["top_predictions"], warnings=["input batch was empty"]),
    bad("borderline", "2.1% failed", requested=50000, failed=1050),
    bad("borderline", "PSI 0.262", psi=0.262),
    bad("borderline", "95 predictions", requested=95, failed=0),
    bad("soft", "93% predicted positive: collapsed classifier", positive=0.93),
    bad("soft", "mean confidence 0.51: coin flips", conf=0.51),
    bad("missing", "drift never measured", drop=["distribution_shift"]),
]


STEPS: dict[int, tuple[Callable[[random.Random], Knobs], Callable[[Doc, Knobs], None], list[Variant]]] = {
    1: (healthy1, build1, STEP1),
    2: (healthy2, build2, STEP2),
    3: (healthy3, build3, STEP3),
    4: (healthy4, build4, STEP4),
    5: (healthy5, build5, STEP5),
    6: (healthy6, build6, STEP6),
}


def make(step: int, rng: random.Random, index: int, knobs: Knobs) -> Doc:
    healthy, build, _ = STEPS[step]
    params = {**healthy(rng), **knobs}
    doc: Doc = copy.deepcopy(json.loads((EXAMPLES / f"step{step}_good.json").read_text(encoding="utf-8")))
    doc["run_id"] = f"run-2025-07-{1 + index % 28:02d}-{step}{index:03d}"
    doc["generated_at"] = f"2025-07-{1 + index % 28:02d}T{8 + index % 12:02d}:{(7 * index) % 60:02d}:00Z"
    build(doc, params)
    if "warnings" in params:
        doc["warnings"] = params["warnings"]
    drop(doc, params.get("drop", []))
    return doc


def main() -> int:
    rng = random.Random(SEED)  # noqa: S311 - seeded jitter for reproducible examples
    manifest = []
    for step, (_, _, variants) in sorted(STEPS.items()):
        folder = HERE / f"step{step}"
        shutil.rmtree(folder, ignore_errors=True)
        counters: dict[tuple[str, str], int] = {}
        for index, (label, kind, note, knobs) in enumerate(variants):
            number = counters[(label, kind)] = counters.get((label, kind), 0) + 1
            path = folder / label / f"{kind}_{number:02d}.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(make(step, rng, index, knobs), indent=2) + "\n", encoding="utf-8")
            manifest.append(
                {"file": str(path.relative_to(HERE)), "step": step, "label": label, "kind": kind, "note": note}
            )
    (HERE / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

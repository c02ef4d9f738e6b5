"""Step outputs of hundreds of MB: the checks on a generated ``bidirectional_survivors.json``, in bounded memory.

Writes a survivor file of ``--size-mb`` (default 1024) in the sieve's record layout (one record per line, as the
pipeline's arrays look once written), then measures, each in a fresh process so one cannot inflate the other's
peak memory:

* checks: step 2 of the shipped config on the file, as the evaluator runs them (streamed summary, schema on the
  first records, every check); wall time, throughput and peak RSS of the process;
* raw parse: the same bytes parsed with orjson, the fastest JSON parser installed. Loading 1 GB of records whole
  takes several GB of RAM, so orjson parses it in ~64 MB arrays cut at record boundaries (the cutting is plain
  byte operations, a rounding error next to the parse); throughput only.

    python bench/large_outputs.py [--size-mb 1024] [--keep] [--file PATH]

Goals: peak RSS <= 150 MB for the checks; their throughput >= 50% of the raw parse.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RSS_GOAL_MB = 150
RATIO_GOAL = 0.5
BLOCK = 64 << 20


def generate(file: Path, size_mb: int) -> int:
    """Survivor records until the file is ``size_mb`` MB; returns the record count."""
    rng = random.Random(7)
    target = size_mb << 20
    count = 0
    with file.open("w", encoding="utf-8") as out:
        out.write("[\n")
        written, seed = 2, 0
        while written < target:
            lines = []
            for _ in range(2000):
                seed += rng.randint(1, 1500)
                f, r = round(rng.uniform(0.25, 0.95), 4), round(rng.uniform(0.25, 0.95), 4)
                record = {
                    "seed": seed, "forward_match_rate": f, "reverse_match_rate": r, "score": round((f + r) / 2, 4),
                    "window_size": 4, "offset": 0, "skip_min": 8, "skip_max": 96, "skip_range": 88,
                    "sessions": ["midday", "evening"], "trial_number": rng.randint(0, 49), "prng_base": "java_lcg",
                    "prng_type": "java_lcg", "skip_mode": "constant" if seed % 4 else "variable",
                    "forward_count": 14000, "reverse_count": 13000, "bidirectional_count": 9500,
                    "intersection_count": 9500, "intersection_ratio": 0.7308, "forward_only_count": 4500,
                    "reverse_only_count": 3500, "survivor_overlap_ratio": 0.5429,
                    "bidirectional_selectivity": 0.6786, "intersection_weight": 0.3654,
                }  # fmt: skip
                lines.append(json.dumps(record, separators=(", ", ": ")))
            text = (",\n" if count else "") + ",\n".join(lines)
            out.write(text)
            written += len(text)
            count += len(lines)
        out.write("\n]\n")
    return count


def run_checks(file: Path) -> dict[str, object]:
    from watcher.config import load_settings
    from watcher.judging.checks import run_checks as check
    from watcher.judging.step_files import Companions, load_step_output

    settings = load_settings(REPO / "config")
    started, cpu = time.perf_counter(), time.process_time()
    source = load_step_output(settings, file, "2")
    report = check(settings.watcher.checks["2"], source.data, Companions(settings, file))
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "cpu_seconds": time.process_time() - cpu,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "records": source.data["records"],
        "aggregated": source.data["aggregated"],
        "checks": report.lines(),
    }


def raw_parse(file: Path) -> dict[str, object]:
    import orjson

    started, cpu = time.perf_counter(), time.process_time()
    records = 0
    with file.open("rb") as handle:
        assert handle.read(1) == b"[", "the generated file starts with ["
        rest = b""
        while True:
            block = handle.read(BLOCK)
            data = rest + block
            cut = data.rfind(b"\n") if block else len(data)
            rest = data[cut + 1 :] if block else b""
            # Whole records only; the file's closing bracket is a line of its own.
            body = data[:cut].strip().removesuffix(b"]").strip().strip(b",")
            if body:
                records += len(orjson.loads(b"[" + body + b"]"))
            if not block:
                break
    return {"seconds": time.perf_counter() - started, "cpu_seconds": time.process_time() - cpu, "records": records}


def measure(kind: str, file: Path) -> dict[str, object]:
    """One measurement in a fresh interpreter, so its peak RSS is its own."""
    done = subprocess.run(
        [sys.executable, __file__, "--measure", kind, "--file", str(file)],
        check=True,
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    result: dict[str, object] = json.loads(done.stdout.splitlines()[-1])
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mb", type=int, default=1024, help="size of the generated file (default 1024)")
    parser.add_argument("--file", type=Path, default=None, help="use (or keep) the file here")
    parser.add_argument("--keep", action="store_true", help="keep the generated file")
    parser.add_argument("--measure", choices=["checks", "raw"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        result = run_checks(args.file) if args.measure == "checks" else raw_parse(args.file)
        print(json.dumps(result))
        return 0
    folder = Path(tempfile.mkdtemp(prefix="watcher-large-"))
    file = args.file or folder / "bidirectional_survivors.json"
    if not file.exists():
        started = time.perf_counter()
        count = generate(file, args.size_mb)
        print(f"generated {file}: {file.stat().st_size / 2**20:.0f} MiB, {count} records "
              f"in {time.perf_counter() - started:.1f} s")  # fmt: skip
    size_mb = file.stat().st_size / 2**20
    try:
        raw = measure("raw", file)
        checks = measure("checks", file)
    finally:
        if not (args.keep or args.file):
            file.unlink()
            folder.rmdir()
    raw_s, raw_cpu = float(raw["seconds"]), float(raw["cpu_seconds"])  # type: ignore[arg-type]
    our_s, our_cpu = float(checks["seconds"]), float(checks["cpu_seconds"])  # type: ignore[arg-type]
    raw_speed, our_speed = size_mb / raw_s, size_mb / our_s
    ratio, cpu_ratio = raw_s / our_s, raw_cpu / our_cpu
    rss = float(checks["peak_rss_mb"])  # type: ignore[arg-type]
    print(f"file: {size_mb:.0f} MiB, {checks['records']} records ({raw['records']} by orjson)")
    print(f"summary: {checks['aggregated']}")
    for line in checks["checks"]:  # type: ignore[attr-defined]
        print(f"  {line}")
    print(f"raw orjson parse: {raw_s:.2f} s wall ({raw_cpu:.2f} s CPU), {raw_speed:.0f} MiB/s")
    print(f"checks (streamed): {our_s:.2f} s wall ({our_cpu:.2f} s CPU), {our_speed:.0f} MiB/s, peak RSS {rss:.0f} MiB")
    # On a shared machine wall time moves with the neighbours' load; the CPU-time ratio is the steadier figure.
    print(f"throughput ratio: {ratio:.2f} by wall time, {cpu_ratio:.2f} by CPU time (goal >= {RATIO_GOAL})")
    print(
        f"peak RSS goal <= {RSS_GOAL_MB} MiB: {'met' if rss <= RSS_GOAL_MB else 'missed'}; "
        f"ratio goal: {'met' if min(ratio, cpu_ratio) >= RATIO_GOAL else 'missed'}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

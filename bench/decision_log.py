"""Decision log figures: what one line costs, alone and with writers racing.

    .venv/bin/python bench/decision_log.py [--lines 2000] [--writers 4]

  append    one whole line per call: open O_APPEND, one write, fsync, close (p50, p99, lines/s)
  racing    the same from several threads at once: lines/s in total, and whether every line parsed

Runs in a temp folder on the same file system as the system temp dir (set TMPDIR to measure elsewhere).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import threading
import time
from pathlib import Path

from watcher.spool import decision_log


def line(i: int) -> bytes:
    record = {"request_id": f"r{i}", "request_type": "evaluate_step", "kind": "evaluation", "decision": "proceed",
              "source": f"r{i}.json", "reasoning": "every check cleared its threshold"}  # fmt: skip
    return decision_log.line_of(record, Path(f"/spool/watcher_decisions/r{i}.json"))


def append(log: Path, lines: int) -> list[float]:
    times = []
    for i in range(lines):
        start = time.perf_counter()
        decision_log.append(log, line(i))
        times.append(time.perf_counter() - start)
    return times


def racing(log: Path, lines: int, writers: int) -> tuple[float, bool]:
    each = lines // writers
    threads = [threading.Thread(target=lambda n=n: [decision_log.append(log, line(n * each + i)) for i in range(each)])
               for n in range(writers)]  # fmt: skip
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - start
    parsed = [json.loads(text) for text in log.read_text().splitlines()]
    return each * writers / seconds, len(parsed) == each * writers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=2000)
    parser.add_argument("--writers", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        times = append(Path(folder) / "one.jsonl", args.lines)
        ms = sorted(t * 1000 for t in times)
        p99 = ms[int(len(ms) * 0.99) - 1]
        print(f"append  {args.lines} lines: p50 {statistics.median(ms):.3f} ms, p99 {p99:.3f} ms, "
              f"{len(ms) / sum(times):.0f} lines/s")  # fmt: skip
        rate, whole = racing(Path(folder) / "racing.jsonl", args.lines, args.writers)
        print(f"racing  {args.writers} writers: {rate:.0f} lines/s, every line whole: {whole}")


if __name__ == "__main__":
    main()

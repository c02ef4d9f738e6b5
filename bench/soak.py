"""Soak: good and bad files at random rates into a `watcher run` that is SIGKILLed and restarted at random.

    .venv/bin/python bench/soak.py [--minutes 30] [--seed N] [--max-rate 40] [--kill-every 45] [--keep]

For ``--minutes`` a producer drops files into the spool at a rate that changes every ~20 s (0.5 to
``--max-rate`` files/s): about half good requests, the rest drawn from the bad-input classes (malformed, NaN,
huge integers, deep nesting, binary, empty, wrong schema, unknown type, a path out of the root, a symlink, a
directory, a FIFO, a lone surrogate, a BOM), duplicates of decided requests, conflicts (a decided id with other
content), files written slowly in place, and files withdrawn by their producer. Delivery is a rename or a write in
place. During the first 70 % the daemon is killed with SIGKILL at random (mean ``--kill-every`` seconds) and
started again; the last 30 % runs one process, whose RSS is sampled after a warm-up (a third of that phase).

At the end the spool must drain, and every file must have exactly one outcome (done/ with a decision, or
rejected/ with an error naming the rule; a withdrawn file none), nothing may remain in requests/ or processing/,
each decided id has one decision file, and RSS may not grow after the warm-up by more than 5 MB and 10 %.
Figures printed: files per class, kills, outcomes, drain time, RSS after the warm-up, at most and at the end,
judge calls per id (a kill may cut a judgement short: judged again, decided once). Exit status 1 when a check
fails. The judge is the test suite's fake (5 ms per judgement), so the figures are about intake, recovery and
bookkeeping, not the model.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.support.daemon_fakes import drop, request, write_config  # noqa: E402
from watcher.spool.lock import holder  # noqa: E402

GOOD_SHARE = 0.5
RATE_PERIOD_SEC = 20.0
KILL_PHASE = 0.7
DRAIN_TIMEOUT_SEC = 300.0
RSS_SLACK_MB = 5.0  # growth after warm-up allowed for allocator noise: more (and over 10 %) fails the soak

BAD: dict[str, bytes | None] = {
    "malformed": b'{"type": "evaluate_step",\n "file": }',
    "truncated": b'{"type": "evaluate_step", "file": "data/st',
    "nan": b'{"type": "evaluate_step", "step": "1", "file": "data/step1.json", "metadata": {"x": NaN}}',
    "infinity": b'{"type": "evaluate_step", "step": "1", "file": "data/step1.json", "metadata": {"x": -Infinity}}',
    "huge_int": b'{"type": "evaluate_step", "metadata": {"n": ' + b"7" * 5000 + b"}}",
    "deep": b'{"type": "evaluate_step", "metadata": ' + b"[" * 20000 + b"]" * 20000 + b"}",
    "binary": bytes(range(256)) * 3,
    "empty": b"",
    "wrong_schema": b'{"type": "evaluate_step", "step": 1, "file": 5}',
    "unknown_type": b'{"type": "launch_rockets"}',
    "escape": request(file="../../etc/passwd"),
    "surrogate": b'{"type": "evaluate_step", "file": "data/step1.json", "metadata": {"s": "\\udfff"}}',
    "bom": b"\xef\xbb\xbf" + request(),
    "symlink": None,
    "directory": None,
    "fifo": None,
}


@dataclass
class Ledger:
    expected: dict[str, str] = field(default_factory=dict)  # file name -> decided | rejected | any | none
    kinds: Counter[str] = field(default_factory=Counter)
    good_ids: list[tuple[str, bytes]] = field(default_factory=list)


class Soak:
    def __init__(self, root: Path, seed: int) -> None:
        self.root, self.rng = root, random.Random(seed)
        self.config = write_config(root, workers=2, settle=0.2, grace=0.5, rescan=2.0)
        (root / "data").mkdir()
        (root / "data" / "step1.json").write_text('{"window": 12}')
        self.requests = root / "watcher_requests"
        self.requests.mkdir()
        self.calls = root / "judge_calls.txt"
        self.ledger = Ledger()
        self.count = 0
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    # -- the daemon --------------------------------------------------------------------------------------------

    def start(self) -> None:
        env = {
            **os.environ,
            "PYTHONPATH": str(REPO),
            "WATCHER_CONFIG_DIR": str(self.config),
            "WATCHER_ROOT": str(self.root),
            "WATCHER_TEST_JUDGE": "tests.support.daemon_fakes:from_env",
            "FAKE_JUDGE_CALLS": str(self.calls),
            "FAKE_JUDGE_DELAY": "0.005",
        }
        log = (self.root / "daemon.log").open("ab")
        cmd = [sys.executable, "-m", "watcher", "--log-level", "warning", "run"]
        self.process = subprocess.Popen(cmd, cwd=self.root, env=env, stderr=log, stdout=log)
        self.starts += 1
        deadline = time.monotonic() + 30
        while holder(self.root / ".watcher" / "watcher.lock") != self.process.pid:
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"daemon did not start; see {self.root / 'daemon.log'}")
            time.sleep(0.05)

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(30)

    def stop(self) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(60)

    def rss_mb(self) -> float:
        assert self.process is not None
        return float(psutil.Process(self.process.pid).memory_info().rss) / 2**20

    # -- the producer ------------------------------------------------------------------------------------------

    def produce_one(self) -> None:
        self.count += 1
        roll = self.rng.random()
        if roll < GOOD_SHARE:
            self.good()
        elif roll < GOOD_SHARE + 0.05 and self.ledger.good_ids:
            self.repeat(conflict=False)
        elif roll < GOOD_SHARE + 0.10 and self.ledger.good_ids:
            self.repeat(conflict=True)
        elif roll < GOOD_SHARE + 0.13:
            self.withdrawn()
        else:
            self.bad(self.rng.choice(sorted(BAD)))

    def name(self, kind: str) -> str:
        return f"s{self.count:07}-{kind}.json"

    def deliver(self, name: str, data: bytes) -> None:
        if self.rng.random() < 0.7:
            drop(self.requests, name, data)
        elif self.rng.random() < 0.5:
            (self.requests / name).write_bytes(data)  # in place, at once
        else:
            with (self.requests / name).open("wb") as handle:  # in place, in two pieces
                handle.write(data[: len(data) // 2])
                handle.flush()
                time.sleep(0.05)  # the producer's pace, part of the load
                handle.write(data[len(data) // 2 :])

    def good(self) -> None:
        name, request_id = self.name("good"), f"g{self.count:07}"
        data = request(request_id, metadata={"n": self.count})
        self.expect(name, "good", "decided")
        self.ledger.good_ids.append((request_id, data))
        self.deliver(name, data)

    def repeat(self, *, conflict: bool) -> None:
        """A decided id again: the same content (a duplicate, archived) or other content (a conflict, rejected)."""
        decisions = self.root / "watcher_decisions"
        decided = [(i, d) for i, d in self.ledger.good_ids[-200:] if (decisions / f"{i}.json").exists()]
        if not decided:
            self.good()
            return
        request_id, data = self.rng.choice(decided)
        if conflict:
            data = request(request_id, metadata={"other": self.count})
        kind = "conflict" if conflict else "duplicate"
        self.expect(self.name(kind), kind, "rejected" if conflict else "decided")
        self.deliver(self.name(kind), data)

    def withdrawn(self) -> None:
        name = self.name("withdrawn")
        target = self.requests / name
        target.write_bytes(request(f"w{self.count:07}")[:20])  # half written, then taken back
        try:
            target.unlink()
            self.expect(name, "withdrawn", "none")
        except FileNotFoundError:  # the daemon was quicker: it has an outcome
            self.expect(name, "withdrawn", "rejected")

    def bad(self, kind: str) -> None:
        name, data = self.name(kind), BAD[kind]
        self.expect(name, kind, "rejected")
        target = self.requests / name
        if kind == "symlink":
            target.symlink_to(self.root / "data" / "step1.json")
        elif kind == "directory":
            target.mkdir()
        elif kind == "fifo":
            os.mkfifo(target)
        else:
            assert data is not None
            self.deliver(name, data)

    def expect(self, name: str, kind: str, outcome: str) -> None:
        self.ledger.expected[name] = outcome
        self.ledger.kinds[kind] += 1

    # -- the run -----------------------------------------------------------------------------------------------

    def run(self, seconds: float, max_rate: float, kill_every: float) -> dict[str, object]:
        self.start()
        began = time.monotonic()
        end, kill_until = began + seconds, began + seconds * KILL_PHASE
        warm_at = kill_until + (end - kill_until) / 3
        rate, next_rate = 1.0, began
        next_kill = began + self.rng.expovariate(1 / kill_every)
        kills, warm_rss, samples = 0, None, []
        while (now := time.monotonic()) < end:
            if now >= next_rate:
                rate, next_rate = self.rng.uniform(0.5, max_rate), now + self.rng.expovariate(1 / RATE_PERIOD_SEC)
            if now >= next_kill and now < kill_until:
                self.kill()
                kills += 1
                self.start()
                next_kill = now + self.rng.expovariate(1 / kill_every)
            if now >= warm_at:
                samples.append(self.rss_mb())
                warm_rss = samples[0]
                warm_at = now + 5.0
            self.produce_one()
            time.sleep(self.rng.expovariate(rate))
        drained_in = self.drain()
        end_rss = self.rss_mb()
        code = self.stop()
        return {
            "kills": kills,
            "starts": self.starts,
            "files": self.count,
            "drained_in": drained_in,
            "warm_rss": warm_rss,
            "end_rss": end_rss,
            "max_rss": max(samples, default=end_rss),
            "exit": code,
        }

    def drain(self) -> float:
        started = time.monotonic()
        while time.monotonic() - started < DRAIN_TIMEOUT_SEC:
            if not self.waiting() and all(self.outcomes(n) or e == "none" for n, e in self.ledger.expected.items()):
                return time.monotonic() - started
            time.sleep(0.5)
        return float("inf")

    def waiting(self) -> list[str]:
        processing = self.requests / "processing"
        left = [p.name for p in self.requests.iterdir() if p.name.endswith(".json") and not p.name.startswith(".")]
        return left + [p.name for p in processing.iterdir()] if processing.is_dir() else left

    def outcomes(self, name: str) -> list[str]:
        found = []
        done, rejected = self.requests / "done", self.requests / "rejected"
        duplicate = name.replace(".json", ".duplicate.json")
        for candidate in (done / name, done / duplicate):
            if os.path.lexists(candidate):
                found.append("decided")
        if (rejected / f"{name}.error.json").exists():
            found.append("rejected")
        return found


def check(soak: Soak) -> list[str]:
    problems = []
    for name, expected in soak.ledger.expected.items():
        found = soak.outcomes(name)
        if expected == "none" and not found:
            continue
        if len(found) != 1:
            problems.append(f"{name}: {len(found)} outcomes {found}, expected one ({expected})")
        elif expected not in ("any", found[0]):
            problems.append(f"{name}: {found[0]}, expected {expected}")
        elif found[0] == "rejected":
            error = json.loads((soak.requests / "rejected" / f"{name}.error.json").read_text())
            if not error.get("rule"):
                problems.append(f"{name}: rejected without a rule")
    left = soak.waiting()
    if left:
        problems.append(f"left in the spool: {left[:10]}")
    decisions = soak.root / "watcher_decisions"
    decided_ids = {p.stem for p in decisions.iterdir() if p.suffix == ".json"}
    good_decided = {rid for rid, _ in soak.ledger.good_ids if rid in decided_ids}
    if len(good_decided) != len({rid for rid, _ in soak.ledger.good_ids}):
        problems.append(f"good ids without a decision: {len(soak.ledger.good_ids) - len(good_decided)}")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--max-rate", type=float, default=40.0, help="files per second, at most")
    parser.add_argument("--kill-every", type=float, default=45.0, help="mean seconds between SIGKILLs")
    parser.add_argument("--keep", action="store_true", help="keep the soak's folder")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="watcher-soak-"))
    soak = Soak(root, args.seed)
    try:
        figures = soak.run(args.minutes * 60, args.max_rate, args.kill_every)
        problems = check(soak)
        warm, end = figures["warm_rss"], figures["end_rss"]
        if isinstance(warm, float) and isinstance(end, float) and end > warm + max(RSS_SLACK_MB, warm * 0.1):
            problems.append(f"RSS grew after warm-up: {warm:.1f} MB -> {end:.1f} MB")
    finally:
        if soak.process is not None and soak.process.poll() is None:
            soak.process.kill()
            soak.process.wait(30)
    calls = Counter(soak.calls.read_text().split()) if soak.calls.exists() else Counter()
    print(f"soak: {args.minutes:g} min, seed {args.seed}, folder {root}")
    print(
        f"  files      {figures['files']} dropped: " + ", ".join(f"{k} {n}" for k, n in soak.ledger.kinds.most_common())
    )
    print(f"  daemon     {figures['kills']} SIGKILLs, {figures['starts']} starts, exit {figures['exit']} on SIGTERM")
    print(f"  drain      {figures['drained_in']:.1f} s after the last file")
    rss = (figures["warm_rss"], figures["max_rss"], figures["end_rss"])
    print("  rss MB     after warm-up {}, max {}, end {}".format(*(f"{v:.1f}" if v else "-" for v in rss)))
    print(f"  judge      {len(calls)} ids judged, {sum(n > 1 for n in calls.values())} judged again after a kill")
    outcomes = Counter(o for name in soak.ledger.expected for o in soak.outcomes(name))
    print(f"  outcomes   decided {outcomes['decided']}, rejected {outcomes['rejected']}")
    print(f"  checks     {'all passed' if not problems else f'{len(problems)} FAILED'}")
    for problem in problems[:20]:
        print(f"    {problem}")
    if not args.keep and not problems:
        shutil.rmtree(root, ignore_errors=True)
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())

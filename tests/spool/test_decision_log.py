"""The decision log: whole lines only, for writers racing each other and for a reader tailing the file."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from watcher.spool import decision_log

pytestmark = pytest.mark.timeout(60)


def record(i: int) -> dict[str, object]:
    return {"request_id": f"r{i}", "request_type": "evaluate_step", "kind": "evaluation", "decision": "proceed",
            "reasoning": "x" * (i % 7000)}  # fmt: skip


def test_racing_writers_and_a_tailing_reader_see_whole_lines(tmp_path: Path) -> None:
    log = tmp_path / "watcher_decisions.jsonl"
    done = threading.Event()
    torn: list[str] = []
    seen: list[int] = []

    def tail() -> None:
        offset, buffer = 0, b""
        while True:
            finished = done.is_set()
            if log.exists():
                with log.open("rb") as handle:
                    handle.seek(offset)
                    chunk = handle.read()
                offset += len(chunk)
                buffer += chunk
                *whole, buffer = buffer.split(b"\n")
                for line in whole:
                    try:
                        json.loads(line)
                    except ValueError:
                        torn.append(line[:80].decode(errors="replace"))
                seen.append(len(whole))
            if finished:
                return

    def write(start: int) -> None:
        for i in range(start, start + 200):
            decision_log.append(log, decision_log.line_of(record(i), tmp_path / f"r{i}.json"))

    reader = threading.Thread(target=tail)
    reader.start()
    writers = [threading.Thread(target=write, args=(n * 200,)) for n in range(4)]
    for thread in writers:
        thread.start()
    for thread in writers:
        thread.join(30)
    done.set()
    reader.join(30)
    assert not torn, torn[:3]
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert sorted(line["request_id"] for line in lines) == sorted(f"r{i}" for i in range(800))
    assert sum(seen) == 800 and decision_log.has(log, "r799") and not decision_log.has(log, "r800")

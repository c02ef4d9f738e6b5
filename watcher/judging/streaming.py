"""Large step outputs (one JSON array of records, hundreds of MB) summarised by streaming, in bounded memory.

The file is read once, in chunks: ijson (its C backend yajl2_c when installed) yields one record at a time and
the same chunks feed the sha256, so the file is neither loaded whole nor read twice. What is kept per field is a
handful of numbers (count, min, sum, max) or at most ``MAX_TEXT_VALUES`` distinct texts, so the summary has the
same size for a thousand records as for ten million: the checks and the model read the summary, never the file.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import ijson

from watcher.config import StreamSpec
from watcher.config.steps import ShareRule
from watcher.errors import InputError
from watcher.judging.checks import COMPARISONS

CHUNK_BYTES = 1 << 20
MAX_TEXT_VALUES = 20


class HashingReader:
    """A binary file whose every byte read also goes into a sha256 (ijson reads it; we get the hash for free)."""

    def __init__(self, handle: IO[bytes]) -> None:
        self.handle = handle
        self.digest = hashlib.sha256()
        self.size = 0
        self.pending = b""  # bytes peeked at and not yet handed out

    def peek(self) -> bytes:
        """The first byte that is not white space (b"" for an empty file), without consuming anything."""
        self.pending = self.handle.read(CHUNK_BYTES)
        return self.pending.lstrip()[:1]

    def read(self, size: int = -1) -> bytes:
        if size == 0:  # ijson asks for 0 bytes to learn whether the file is binary: hand out nothing
            return b""
        if self.pending:
            data, self.pending = self.pending, b""
        else:
            data = self.handle.read(size)
        self.digest.update(data)
        self.size += len(data)
        return data

    def drain(self) -> None:
        """Hash what the parser did not need to read (trailing whitespace)."""
        while self.read(CHUNK_BYTES):
            pass


def file_sha256(file: Path) -> str:
    """The sha256 of a file of any size, read in chunks."""
    with file.open("rb") as handle:
        reader = HashingReader(handle)
        reader.drain()
    return reader.digest.hexdigest()


@dataclass
class FieldStats:
    """Running aggregates of one field: numbers, lengths of objects/arrays, or distinct texts."""

    count: int = 0
    missing: int = 0
    not_number: int = 0
    low: float = math.inf
    high: float = -math.inf
    total: float = 0.0
    squares: float = 0.0
    lengths: bool = False
    texts: dict[str, int] = field(default_factory=dict)

    def add(self, value: Any) -> None:
        if value is None:
            self.missing += 1
            return
        if isinstance(value, dict | list):
            self.lengths = True
            value = len(value)
        elif isinstance(value, str):
            self.count += 1
            if value in self.texts or len(self.texts) < MAX_TEXT_VALUES:
                self.texts[value] = self.texts.get(value, 0) + 1
            return
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            self.not_number += 1
            return
        self.count += 1
        self.total += value
        self.squares += value * value
        self.low = min(self.low, value)
        self.high = max(self.high, value)

    def summary(self) -> dict[str, Any]:
        if self.texts:
            return {"count": self.count, "missing": self.missing, "values": self.texts}
        out: dict[str, Any] = {"count": self.count, "missing": self.missing, "not_number": self.not_number}
        if self.lengths:
            out["of"] = "length"
        if self.count:
            mean = self.total / self.count
            # Population std from the running sums; rounding can make the variance a hair below 0.
            std = math.sqrt(max(0.0, self.squares / self.count - mean * mean))
            out |= {"min": self.low, "mean": round(mean, 6), "max": self.high, "std": round(std, 6)}
        return out


def field_getter(path: str) -> Callable[[Any], Any]:
    """A fast reader of a dotted field of a record (one dict lookup for a top-level name)."""
    keys = path.split(".")
    if len(keys) == 1:
        key = keys[0]
        return lambda record: record.get(key) if isinstance(record, dict) else None

    def get(record: Any) -> Any:
        for key in keys:
            if not isinstance(record, dict):
                return None
            record = record.get(key)
        return record

    return get


def share_test(rule: ShareRule) -> Callable[[Any], bool]:
    get, compare, value = field_getter(rule.path), COMPARISONS[rule.op], rule.value

    def test(record: Any) -> bool:
        actual = get(record)
        if actual is None or isinstance(actual, bool) != isinstance(value, bool):
            return False
        try:
            return bool(compare(actual, value))
        except TypeError:  # a text compared with a number: does not match
            return False

    return test


def summarize_array(file: Path, spec: StreamSpec) -> tuple[dict[str, Any], str]:
    """(summary, sha256) of a file holding one JSON array of records, read once by streaming."""
    getters = [(name, field_getter(f.path), FieldStats()) for name, f in spec.fields.items()]
    tests = [(name, share_test(rule), [0]) for name, rule in spec.shares.items()]
    sample: list[Any] = []
    records = 0
    try:
        with file.open("rb") as handle:
            reader = HashingReader(handle)
            _expect_array(reader, file)
            for record in ijson.items(reader, "item", use_float=True, buf_size=CHUNK_BYTES):
                records += 1
                if len(sample) < spec.sample:
                    sample.append(record)
                for _, get, stats in getters:
                    stats.add(get(record))
                for _, test, hits in tests:
                    if test(record):
                        hits[0] += 1
            reader.drain()
    except OSError as exc:
        raise InputError(file, f"cannot read: {exc.strerror or exc}") from exc
    except ijson.JSONError as exc:
        raise InputError(file, f"invalid JSON in the array: {exc}") from exc
    summary = {
        "records": records,
        "fields": {name: stats.summary() for name, _, stats in getters},
        "shares": {name: (hits[0] / records if records else None) for name, _, hits in tests},
        "sample": sample,
        "aggregated": _aggregated(file, reader.size, records, spec),
    }
    return summary, reader.digest.hexdigest()


def _expect_array(reader: HashingReader, file: Path) -> None:
    """The file must be one JSON array; anything else is named before any record is parsed."""
    first = reader.peek()
    if first != b"[":
        found = "an empty file" if not first else repr(first.decode("latin-1"))
        raise InputError(file, f"expected one JSON array of records, found {found} at the start")


def _aggregated(file: Path, size: int, records: int, spec: StreamSpec) -> str:
    parts = [f"{records} records of {file.name} ({size} bytes) aggregated by streaming"]
    if spec.fields:
        parts.append(
            "per field count/min/mean/max/std (lengths for objects, distinct values for texts): "
            + ", ".join(spec.fields)
        )
    if spec.shares:
        parts.append("shares of matching records: " + ", ".join(spec.shares))
    parts.append(f"sample: the first {min(records, spec.sample)} records")
    return "; ".join(parts)

"""Hostile and unlucky input to a running daemon: every file ends rejected with the rule it broke, or decided;
nothing is left in the spool; the daemon lives on. Fuzzed over bytes and over JSON-ish text as well."""

from __future__ import annotations

import errno
import json
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.daemon_fakes import FakeJudge, count_json, drop, folders, request, running_daemon, write_config
from tests.support.helpers import wait_until
from watcher.config import load_settings
from watcher.core.ids import sha256_hex
from watcher.daemon import scheduler as dispatch

pytestmark = pytest.mark.timeout(180)

REQUEST = b'{"type": "evaluate_step", "step": "1", "file": "data/step1.json", "metadata": %s}'
BAD_INPUTS: dict[str, tuple[bytes, str]] = {
    "huge_int.json": (REQUEST % (b"9" * 5000), "Exceeds the limit (4300 digits)"),
    "nan.json": (REQUEST % b'{"loss": NaN}', "NaN is not a number in JSON"),
    "infinity.json": (REQUEST % b'{"loss": Infinity}', "Infinity is not a number in JSON"),
    "minus_infinity.json": (REQUEST % b'{"loss": -Infinity}', "-Infinity is not a number in JSON"),
    "deep.json": (REQUEST % (b"[" * 30000 + b"]" * 30000), "nested too deeply"),
    "surrogate.json": (REQUEST % b'{"note": "\\ud800"}', "lone UTF-16 surrogate"),
    "bom.json": (b"\xef\xbb\xbf" + request("bom"), "invalid JSON"),
    "utf16.json": (request("utf16").decode().encode("utf-16"), "not UTF-8"),
    "nul.json": (b"\x00" * 64, "invalid JSON"),
    "long_path.json": (request("long", file="x" * 4000), "unusable path: File name too long"),
}


@pytest.fixture
def daemon(root: Path) -> Iterator[Any]:
    judge = FakeJudge()
    with running_daemon(load_settings(write_config(root, grace=0.2, settle=0.1), root), judge) as running:
        running.fake_judge = judge
        yield running


def error_of(root: Path, name: str) -> dict[str, Any]:
    record: dict[str, Any] = json.loads((folders(root)["rejected"] / f"{name}.error.json").read_text())
    return record


def reason(record: dict[str, Any]) -> str:
    return f"{record['rule']} {' '.join(record['details'])}"


def outcome(root: Path, name: str) -> str | None:
    """rejected, decided, or None while the file has none."""
    f = folders(root)
    if (f["rejected"] / f"{name}.error.json").exists() and os.path.lexists(f["rejected"] / name):
        return "rejected"  # the error record is written first, then the file moved next to it
    return (
        "decided"
        if (f["done"] / name).exists() or (f["done"] / name.replace(".json", ".duplicate.json")).exists()
        else None
    )


def assert_nothing_left(root: Path, daemon: Any) -> None:
    f = folders(root)
    assert count_json(f["requests"]) == 0 and not any(f["processing"].iterdir())
    assert not daemon.scheduler.faults.report()


def test_each_class_of_bad_input_is_rejected_naming_its_rule(root: Path, daemon: Any) -> None:
    f = folders(root)
    for name, (data, _) in BAD_INPUTS.items():
        (f["requests"] / name).write_bytes(data)  # in place, as careless producers do
    assert wait_until(lambda: all(outcome(root, n) == "rejected" for n in BAD_INPUTS), timeout=30)
    for name, (_, expected) in BAD_INPUTS.items():
        assert expected in reason(error_of(root, name)), name
    drop(f["requests"], "alive.json", request("alive"))
    assert wait_until(lambda: outcome(root, "alive.json") == "decided", timeout=10)
    assert_nothing_left(root, daemon)


def test_the_same_id_with_other_content_is_a_conflict_naming_both_sha256(root: Path, daemon: Any) -> None:
    f = folders(root)
    first, same, other = request("shared"), request("shared"), request("shared", metadata={"run": 2})
    drop(f["requests"], "first.json", first)
    assert wait_until(lambda: outcome(root, "first.json") == "decided", timeout=10)
    assert json.loads((f["decisions"] / "shared.json").read_text())["request_sha256"] == sha256_hex(first)
    drop(f["requests"], "same.json", same)
    drop(f["requests"], "other.json", other)
    assert wait_until(lambda: outcome(root, "same.json") and outcome(root, "other.json"), timeout=10)
    assert (f["done"] / "same.duplicate.json").exists()
    error = error_of(root, "other.json")
    assert "already decided for other content" in error["rule"] and error["request_id"] == "shared"
    assert error["details"] == [
        f"decided request sha256: {sha256_hex(first)}",
        f"this file's sha256: {sha256_hex(other)}",
    ]
    assert daemon.fake_judge.calls == {"shared": 1}
    assert_nothing_left(root, daemon)


def test_a_file_that_vanishes_or_changes_type_before_the_read(root: Path, daemon: Any) -> None:
    f = folders(root)
    gone = f["requests"] / "gone.json"
    gone.write_bytes(request("gone"))  # in place: it settles first, and is deleted before it is read
    gone.unlink()
    changed = f["requests"] / "changed.json"
    changed.write_bytes(request("changed"))
    changed.unlink()
    changed.mkdir()
    assert wait_until(lambda: outcome(root, "changed.json") == "rejected", timeout=10)
    assert "not a regular file: a directory" in error_of(root, "changed.json")["rule"]
    drop(f["requests"], "alive.json", request("alive"))
    assert wait_until(lambda: outcome(root, "alive.json") == "decided", timeout=10)
    assert not (f["rejected"] / "gone.json.error.json").exists()
    assert_nothing_left(root, daemon)


RAISED: dict[str, tuple[BaseException, str]] = {
    "memory.json": (MemoryError(), "too large to process in memory"),
    "recursion.json": (RecursionError("maximum recursion depth exceeded"), "nested too deeply"),
    "unicode.json": (UnicodeEncodeError("utf-8", "\udc00", 0, 1, "surrogates not allowed"), "not valid text"),
    "denied.json": (PermissionError(errno.EACCES, "Permission denied"), "cannot read: Permission denied"),
    "eio.json": (OSError(errno.EIO, "Input/output error"), "cannot read: Input/output error"),
    "bug.json": (KeyError("surprise"), "cannot be processed: KeyError"),
}


def raising(original: Callable[..., Any], attempts: dict[str, int]) -> Callable[..., Any]:
    """validate_request, raising the exception its file's name asks for (counting the attempts)."""
    lock = threading.Lock()

    def validate(payload: Any, data: bytes, path: Path, *args: Any) -> Any:
        if path.name in RAISED:
            with lock:
                attempts[path.name] = attempts.get(path.name, 0) + 1
            raise RAISED[path.name][0]
        return original(payload, data, path, *args)

    return validate


def test_any_exception_while_validating_ends_as_a_rejection(
    root: Path, daemon: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    attempts: dict[str, int] = {}
    monkeypatch.setattr(dispatch, "validate_request", raising(dispatch.validate_request, attempts))
    f = folders(root)
    for name in RAISED:
        drop(f["requests"], name, request(name.removesuffix(".json")))
    assert wait_until(lambda: all(outcome(root, n) == "rejected" for n in RAISED), timeout=20)
    for name, (_, expected) in RAISED.items():
        assert expected in error_of(root, name)["rule"], name
    assert attempts["eio.json"] == 2 and attempts["memory.json"] == 1  # a transient error is tried once more
    assert wait_until(lambda: daemon.metrics.outcomes["rejected"] == len(RAISED), timeout=5)
    assert_nothing_left(root, daemon)


def test_a_claimed_request_that_cannot_be_read_at_start_is_rejected(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    f = folders(root)
    f["processing"].mkdir(parents=True)
    (f["processing"] / "memory.json").write_bytes(request("memory"))
    (f["processing"] / "fine.json").write_bytes(request("fine"))
    original = dispatch.parse_request

    def parse(data: bytes, path: Path, *args: Any) -> Any:
        if path.name == "memory.json":
            raise MemoryError
        return original(data, path, *args)

    monkeypatch.setattr(dispatch, "parse_request", parse)
    with running_daemon(load_settings(write_config(root), root), FakeJudge()) as running:
        assert wait_until(lambda: outcome(root, "fine.json") == "decided", timeout=10)
        assert "too large to process in memory" in error_of(root, "memory.json")["rule"]
        assert_nothing_left(root, running)


# -- fuzzing -----------------------------------------------------------------------------------------------------

SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
JSONISH = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
REQUESTISH = st.fixed_dictionaries(
    {"type": st.sampled_from(["evaluate_step", "run_selfplay", "nope", 7])},
    optional={
        "id": st.text(max_size=12) | st.integers(),
        "step": st.sampled_from(["1", "2", "9", "01", 1, None]),
        "file": st.sampled_from(["data/step1.json", "../outside.json", "/etc/passwd", "", "data/"]),
        "metadata": JSONISH,
    },
)


def jsonish_text() -> st.SearchStrategy[bytes]:
    """JSON as Python writes it (NaN included), sometimes cut short or with a stray byte."""
    documents = (REQUESTISH | JSONISH).map(
        lambda doc: json.dumps(doc, ensure_ascii=False).encode("utf-8", "surrogatepass")
    )
    return st.tuples(documents, st.integers(0, 3), st.binary(max_size=2)).map(_mangle)


def _mangle(parts: tuple[bytes, int, bytes]) -> bytes:
    data, how, noise = parts
    if how == 1:
        return data[: len(data) // 2]
    if how == 2:
        return data + noise
    return data


class Dropper:
    """Drops each generated file into the running daemon and waits for its outcome."""

    def __init__(self, root: Path) -> None:
        self.root, self.count = root, 0

    def __call__(self, data: bytes) -> None:
        self.count += 1
        name = f"fz{self.count:05}.json"
        drop(folders(self.root)["requests"], name, data)
        assert wait_until(lambda: outcome(self.root, name) is not None, timeout=10), (name, data[:200])
        if outcome(self.root, name) == "rejected":
            assert error_of(self.root, name)["rule"], name


@pytest.mark.parametrize("kind", ["bytes", "jsonish"])
def test_fuzzed_files_are_all_answered(root: Path, daemon: Any, kind: str) -> None:
    dropper = Dropper(root)
    strategy = st.binary(max_size=300) if kind == "bytes" else jsonish_text()

    @settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(strategy)
    def answered(data: bytes) -> None:
        dropper(data)

    answered()
    assert dropper.count >= 50
    assert_nothing_left(root, daemon)
    drop(folders(root)["requests"], "alive.json", request("still-alive"))
    assert wait_until(lambda: outcome(root, "alive.json") == "decided", timeout=10)

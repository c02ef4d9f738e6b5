"""The spool folders: reading never follows a symlink, moves never overwrite, rejections say why."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from handlers import registry
from tests.support.daemon_fakes import request, write_config
from watcher.config import load_settings
from watcher.core.ids import content_id
from watcher.core.regular import read_fd, read_regular
from watcher.errors import InputError, PolicyViolation, SchemaViolation
from watcher.requests.contract import HandlerContext
from watcher.requests.paths import resolve_inside
from watcher.requests.validate import parse_request
from watcher.spool.folders import Spool, SpoolPaths, is_candidate

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def spool(tmp_path: Path) -> Spool:
    settings = load_settings(write_config(tmp_path), tmp_path)
    spool = Spool(SpoolPaths.from_settings(settings))
    spool.ensure()
    return spool


def test_candidates_are_json_files_that_are_not_hidden_or_temporary() -> None:
    assert is_candidate("a.json")
    for name in (".a.json", "a.json.tmp", "a.tmp", "a.txt", "a.json~", "a.json.part"):
        assert not is_candidate(name), name


def test_read_regular_refuses_symlinks_fifos_and_directories(tmp_path: Path) -> None:
    outside = tmp_path / "secret.json"
    outside.write_text("{}")
    (tmp_path / "link.json").symlink_to(outside)
    os.mkfifo(tmp_path / "fifo.json")
    (tmp_path / "dir.json").mkdir()
    for name, kind in (("link.json", "a symlink"), ("fifo.json", "a FIFO"), ("dir.json", "a directory")):
        with pytest.raises(InputError, match=f"not a regular file: {kind}"):
            read_regular(tmp_path / name, 1000)


def test_read_regular_enforces_the_size_cap(tmp_path: Path) -> None:
    big = tmp_path / "big.json"
    big.write_bytes(b" " * 101)
    with pytest.raises(InputError, match=r"101 bytes, over limits\.max_file_bytes"):
        read_regular(big, 100)
    assert read_regular(big, 101)[0] == b" " * 101


def test_read_fd_reads_to_the_end_whatever_the_size_it_was_given(tmp_path: Path) -> None:
    file = tmp_path / "f.json"
    file.write_bytes(b"x" * 100)
    fd = os.open(file, os.O_RDONLY)
    try:
        for size, limit, expected in ((100, 1000, 100), (10, 1000, 100), (500, 1000, 100), (100, 50, 50)):
            os.lseek(fd, 0, os.SEEK_SET)
            assert read_fd(fd, size, limit) == b"x" * expected, (size, limit)
    finally:
        os.close(fd)
    (tmp_path / "empty.json").write_bytes(b"")
    assert read_regular(tmp_path / "empty.json", 10)[0] == b""


def test_claim_and_archive_never_overwrite(spool: Spool) -> None:
    first = spool.paths.requests / "same.json"
    first.write_bytes(b"1")
    claimed_1 = spool.claim(first)
    first.write_bytes(b"2")
    claimed_2 = spool.claim(first)
    assert claimed_1 is not None and claimed_2 is not None and claimed_1 != claimed_2
    done = [spool.archive(claimed_1), spool.archive(claimed_2, duplicate=True)]
    assert sorted(p.read_bytes() for p in done) == [b"1", b"2"]
    assert done[1].name.endswith(".duplicate.json")
    assert spool.claim(spool.paths.requests / "gone.json") is None


def test_reject_writes_the_reason_next_to_the_file(spool: Spool) -> None:
    bad = spool.paths.requests / "bad.json"
    for content in (b"first", b"second"):
        bad.write_bytes(content)
        target = spool.reject(bad, "invalid JSON at line 1 column 1", ["detail"], None)
        error = json.loads(target.with_name(target.name + ".error.json").read_text())
        assert error["rule"] == "invalid JSON at line 1 column 1" and error["file"] == "bad.json"
        assert target.read_bytes() == content
    assert sorted(p.name for p in spool.paths.rejected.iterdir()) == [
        "bad.1.json",
        "bad.1.json.error.json",
        "bad.json",
        "bad.json.error.json",
    ]


def test_scan_lists_requests_oldest_first_and_skips_own_folders(spool: Spool) -> None:
    for i, name in enumerate(("b.json", "a.json", ".hidden.json", "c.json.tmp")):
        path = spool.paths.requests / name
        path.write_text("{}")
        os.utime(path, ns=(10**18 + i, 10**18 + i))
    assert [p.name for p in spool.scan()] == ["b.json", "a.json"]


def test_parse_request_ids(tmp_path: Path) -> None:
    settings = load_settings(write_config(tmp_path), tmp_path)
    named = parse_request(request("run-7.step_1"), tmp_path / "x.json", settings, registry())
    assert named.id == "run-7.step_1"
    data = request()
    assert parse_request(data, tmp_path / "y.json", settings, registry()).id == content_id(data)


@pytest.mark.parametrize(
    ("data", "error", "text"),
    [
        (b'{"type": "evaluate_step",\n "file": }', InputError, "line 2 column 10"),
        (b"", InputError, "empty file"),
        (b"\xff\xfe{}", InputError, "not UTF-8"),
        (b"[1, 2]", InputError, "expected a JSON object"),
        (b'{"type": "launch"}', InputError, "unknown request type 'launch'; known types: .*evaluate_step"),
        (b'{"file": "a"}', SchemaViolation, "missing request type"),
        (request("../escape"), SchemaViolation, "does not match schema"),
        (request(file="../../etc/passwd"), InputError, "leads outside"),
        (request(file="/etc/passwd"), InputError, "leads outside"),
        (request(step="9"), PolicyViolation, "step '9' is not configured"),
    ],
)
def test_parse_request_rejects_with_a_reason(tmp_path: Path, data: bytes, error: type[Exception], text: str) -> None:
    settings = load_settings(write_config(tmp_path), tmp_path)
    with pytest.raises(error, match=text.replace("[", r"\[")):
        parse_request(data, tmp_path / "r.json", settings, registry())


def test_schema_errors_name_their_json_path(tmp_path: Path) -> None:
    settings = load_settings(write_config(tmp_path), tmp_path)
    data = json.dumps({"type": "evaluate_step", "step": 1, "file": 5, "extra": True}).encode()
    with pytest.raises(SchemaViolation) as caught:
        parse_request(data, tmp_path / "r.json", settings, registry())
    details = "\n".join(caught.value.details)
    assert "$.step:" in details and "$.file:" in details and "extra" in details


def test_symlink_inside_the_root_cannot_lead_out(tmp_path: Path) -> None:
    """Intake checks the path as written; the handler resolves it when it uses it, and refuses the way out."""
    settings = load_settings(write_config(tmp_path), tmp_path)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "step1.json").symlink_to("/etc/hostname")
    parsed = parse_request(request(), tmp_path / "r.json", settings, registry())
    context = HandlerContext(settings=settings, judge=None, request_id=parsed.id)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="leads outside"):
        parsed.spec.handle(parsed.model, context)
    with pytest.raises(InputError, match="leads outside"):
        parse_request(request(file="data/../../etc/hostname"), tmp_path / "r.json", settings, registry())


def test_a_path_outside_as_written_is_resolved_before_it_is_refused(tmp_path: Path) -> None:
    real = tmp_path / "real"
    (real / "data").mkdir(parents=True)
    (tmp_path / "link").symlink_to(real)
    settings = load_settings(write_config(real), tmp_path / "link")
    assert resolve_inside(settings, str(real / "data" / "x.json"), real / "r.json", lexical=True) == (
        real / "data" / "x.json"
    )
    with pytest.raises(InputError, match="leads outside"):
        resolve_inside(settings, "/etc/hostname", real / "r.json", lexical=True)


def test_stale_temp_files_of_cut_off_writes_are_swept(spool: Spool) -> None:
    stale = spool.paths.decisions / ".x.json.abc.tmp"
    fresh = spool.paths.decisions / ".y.json.def.tmp"
    for path in (stale, fresh):
        path.write_text("{")
    os.utime(stale, (1, 1))
    spool.ensure()
    assert not stale.exists() and fresh.exists()


@pytest.mark.parametrize(
    "payload",
    [
        {"type": "evaluate_step", "file": "data/x.json"},
        {"type": "evaluate_step", "file": "data/x.json", "step": "2", "id": "a.b-c_1", "metadata": {"k": [1]}},
        {"type": "evaluate_step", "file": "data/x.json", "step": 2},
        {"type": "evaluate_step", "file": "data/x.json", "step": "02"},
        {"type": "evaluate_step", "file": "data/x.json", "id": "-starts-with-dash"},
        {"type": "evaluate_step", "file": "data/x.json", "id": "x" * 129},
        {"type": "evaluate_step", "file": ""},
        {"type": "evaluate_step", "file": 5},
        {"type": "evaluate_step"},
        {"type": "evaluate_step", "file": "a", "metadata": []},
        {"type": "evaluate_step", "file": "a", "extra": 1},
        {"type": "evaluate_step", "file": "a", "id": None, "step": None, "metadata": None},
    ],
)
def test_strict_model_and_json_schema_accept_the_same_requests(payload: dict[str, object]) -> None:
    from pydantic import ValidationError

    spec = registry().handler_for("evaluate_step", Path("r.json"))
    try:
        spec.model.model_validate(payload, strict=True)
        model_accepts = True
    except ValidationError:
        model_accepts = False
    assert model_accepts == registry().validator_for(spec).is_valid(payload)

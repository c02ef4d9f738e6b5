"""The spool folders: scan, claim, decide, archive, reject. The folders are the record; nothing is kept only in memory.

A request moves ``requests/`` -> ``processing/`` (the claim, one rename) -> ``done/`` after its decision is
written atomically to ``decisions/<id>.json``; or -> ``rejected/`` next to ``<name>.error.json``. A crash at any
point leaves each request in exactly one of these folders, and a decision file, once written, is never rewritten.

Files are opened with ``O_NOFOLLOW | O_NONBLOCK`` after an ``lstat`` (``watcher.core.regular``): a symlink, FIFO,
device or directory named ``x.json`` is rejected unread, never followed out of the spool.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from loguru import logger

from watcher.config import Settings
from watcher.core.atomic import atomic_write_json
from watcher.spool import decision_log

IGNORED_SUFFIXES = (".tmp", ".part", ".swp", "~")
ERROR_SUFFIX = ".error.json"
STALE_TEMP_SEC = 3600.0


def is_candidate(name: str) -> bool:
    """Request files are ``*.json``; hidden and temporary names belong to producers still writing them."""
    return name.endswith(".json") and not name.startswith(".") and not name.endswith(IGNORED_SUFFIXES)


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def sweep_temp_files(folder: Path, older_than_sec: float) -> int:
    """Remove temp files of atomic writes cut off by a crash (old enough that no writer can still own them)."""
    removed = 0
    cutoff = time.time() - older_than_sec
    for path in folder.glob(".*.tmp"):
        with contextlib.suppress(FileNotFoundError):
            if path.lstat().st_mtime < cutoff:
                path.unlink()
                removed += 1
    return removed


@dataclass(frozen=True)
class SpoolPaths:
    requests: Path
    processing: Path
    done: Path
    rejected: Path
    decisions: Path
    state: Path
    decision_log: Path | None = None  # every decision is also appended here as one line

    @classmethod
    def from_settings(cls, settings: Settings) -> SpoolPaths:
        folders = settings.watcher.folders
        return cls(
            requests=settings.path(folders.requests),
            processing=settings.path(folders.processing),
            done=settings.path(folders.done),
            rejected=settings.path(folders.rejected),
            decisions=settings.path(folders.decisions),
            state=settings.path(folders.state),
            decision_log=None
            if settings.watcher.decision_log is None
            else settings.path(settings.watcher.decision_log),
        )

    def all(self) -> tuple[Path, ...]:
        return (self.requests, self.processing, self.done, self.rejected, self.decisions, self.state)


class Spool:
    def __init__(self, paths: SpoolPaths) -> None:
        self.paths = paths
        # Picking a free name and renaming onto it must be one step: worker threads archive at the same time. One
        # lock per target folder: claims (main loop) and archives (workers) do not wait for each other.
        self._move_locks = {folder: threading.Lock() for folder in (paths.processing, paths.done, paths.rejected)}
        self._decisions = str(paths.decisions)

    def ensure(self) -> None:
        for folder in self.paths.all():
            folder.mkdir(parents=True, exist_ok=True)
        for folder in (self.paths.decisions, self.paths.rejected, self.paths.state):
            sweep_temp_files(folder, STALE_TEMP_SEC)

    def scan(self) -> list[Path]:
        """Request candidates waiting in the spool, oldest first."""
        return self._entries(self.paths.requests)

    def claimed(self) -> list[Path]:
        """Requests claimed by a daemon that stopped before finishing them."""
        return self._entries(self.paths.processing)

    def _entries(self, folder: Path) -> list[Path]:
        found: list[tuple[int, str]] = []
        own = self._own_folders()
        with os.scandir(folder) as entries:
            for entry in entries:
                if is_candidate(entry.name) and entry.path not in own:
                    try:
                        found.append((entry.stat(follow_symlinks=False).st_mtime_ns, entry.name))
                    except FileNotFoundError:
                        continue
        return [folder / name for _, name in sorted(found)]

    def _own_folders(self) -> set[str]:
        return {str(self.paths.processing), str(self.paths.done), str(self.paths.rejected)}

    def claim(self, path: Path) -> Path | None:
        """Move a request into processing/; None when it is gone (another claim or its producer took it)."""
        try:
            return self._move(path, self.paths.processing, path.name)
        except FileNotFoundError:
            return None

    def decision_file(self, request_id: str) -> str:
        # A string join, not a Path: asked once per request on the main loop (has_decision).
        return os.path.join(self._decisions, f"{request_id}.json")

    def decision_path(self, request_id: str) -> Path:
        return Path(self.decision_file(request_id))

    def has_decision(self, request_id: str) -> bool:
        return os.path.exists(self.decision_file(request_id))

    def decided_sha256(self, request_id: str) -> str | None:
        """The sha256 of the request a decision was made for; None when the record does not say (or is
        unreadable: then a second request with the id cannot be told apart, and counts as a duplicate)."""
        try:
            with open(self.decision_file(request_id), "rb") as handle:
                record = json.loads(handle.read())
        except (OSError, ValueError):
            return None
        sha = record.get("request_sha256") if isinstance(record, dict) else None
        return sha if isinstance(sha, str) else None

    def write_decision(self, request_id: str, record: dict[str, Any]) -> Path:
        """The decision file (atomic, durable), then its line in the decision log."""
        target = atomic_write_json(self.decision_path(request_id), record)
        if self.paths.decision_log is not None:
            try:
                decision_log.append(self.paths.decision_log, decision_log.line_of(record, target))
            except OSError as exc:  # the decision stands; the line is added when the decision is found again
                logger.bind(request_id=request_id).error("cannot append to the decision log: {}", exc)
        return target

    def ensure_logged(self, request_id: str) -> None:
        """Add the log line of a decision a crash kept from being logged (the decision file was written)."""
        log = self.paths.decision_log
        if log is None or not self.has_decision(request_id) or decision_log.has(log, request_id):
            return
        try:
            record = json.loads(self.decision_path(request_id).read_text(encoding="utf-8"))
            decision_log.append(log, decision_log.line_of(record, self.decision_path(request_id)))
        except (OSError, ValueError) as exc:
            logger.bind(request_id=request_id).error("cannot add the decision log line: {}", exc)

    def archive(self, claimed: Path, *, duplicate: bool = False) -> Path:
        # Not made durable: if the rename is lost, recovery finds the decision and archives the request again.
        name = f"{claimed.stem}.duplicate{claimed.suffix}" if duplicate else claimed.name
        return self._move(claimed, self.paths.done, name)

    def reject(self, path: Path, rule: str, details: list[str], request_id: str | None = None) -> Path:
        """Move a bad request to rejected/ next to ``<name>.error.json``; the error is written first."""
        with self._move_locks[self.paths.rejected]:
            target = self._free_name(self.paths.rejected, path.name, ERROR_SUFFIX)
            record = self._error_record(path.name, target, rule, details, request_id)
            atomic_write_json(target.with_name(target.name + ERROR_SUFFIX), record)
            # FileNotFoundError: moved by an earlier attempt; the error record stands.
            with contextlib.suppress(FileNotFoundError):
                os.replace(path, target)
        return target

    def record_error(self, key: str, source: Path, rule: str, details: list[str]) -> Path:
        """An error about a file that stays where it is (a step output): ``rejected/<key>.error.json``."""
        target = self.paths.rejected / f"{key}{ERROR_SUFFIX}"
        return atomic_write_json(target, self._error_record(str(source), source, rule, details, key))

    def has_error(self, key: str) -> bool:
        return (self.paths.rejected / f"{key}{ERROR_SUFFIX}").exists()

    def _error_record(
        self, name: str, where: Path, rule: str, details: list[str], request_id: str | None
    ) -> dict[str, Any]:
        return {
            "file": name,
            "path": str(where),
            "request_id": request_id,
            "rule": rule,
            "details": details,
            "rejected_at": now_iso(),
        }

    def _move(self, source: Path, folder: Path, name: str) -> Path:
        with self._move_locks[folder]:
            target = self._free_name(folder, name)
            os.replace(source, target)
        return target

    @staticmethod
    def _free_name(folder: Path, name: str, companion: str | None = None) -> Path:
        """``name`` in ``folder``, or ``stem.N.suffix`` when taken (an archive never overwrites); with
        ``companion``, the name plus that suffix must be free as well."""
        stem, dot, suffix = name.rpartition(".")
        if not dot:
            stem, suffix = name, ""
        base = str(folder)
        candidate, n = os.path.join(base, name), 1
        while os.path.lexists(candidate) or (companion is not None and os.path.lexists(candidate + companion)):
            candidate = os.path.join(base, f"{stem}.{n}.{suffix}" if dot else f"{stem}.{n}")
            n += 1
        return Path(candidate)

    def counts(self) -> dict[str, int]:
        """Entries per folder (the spool itself counts only request candidates)."""
        result = {"requests": len(self.scan())}
        for label in ("processing", "done", "rejected", "decisions"):
            folder: Path = getattr(self.paths, label)
            with os.scandir(folder) as entries:
                names = (e.name for e in entries)
                result[label] = sum(1 for n in names if not n.startswith(".") and not n.endswith(ERROR_SUFFIX))
        return result

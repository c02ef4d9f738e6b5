"""Reading a watched step output for the scheduler: its hash, whether it parses, whether its step has finished.

Step outputs have no size cap (``limits.max_file_bytes`` is for requests). One whose step has a ``stream`` spec (a
large array of records) is hashed in chunks and never parsed here: its judge summarises it by streaming. Any other
is read whole, parsed, and asked its step's ``ready_when``.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from watcher.config import Settings
from watcher.core.ids import sha256_hex
from watcher.core.jsondoc import decode_json
from watcher.core.regular import file_kind, read_regular
from watcher.errors import InputError
from watcher.judging.step_files import is_ready
from watcher.judging.streaming import file_sha256

NO_CAP = 1 << 62


@dataclass(frozen=True)
class StepRead:
    info: os.stat_result
    sha256: str
    ready: bool = True
    error: InputError | None = None  # did not parse (yet): retried for the grace period, then recorded


def read_step_output(settings: Settings, path: Path, step: str) -> StepRead:
    """FileNotFoundError passes through; a file that is not a regular one is an InputError."""
    config = settings.watcher.steps[step]
    if config.stream is not None:
        info = os.lstat(path)
        if not stat.S_ISREG(info.st_mode):
            raise InputError(path, f"not a regular file: {file_kind(info.st_mode)}")
        return StepRead(info, file_sha256(path))
    data, info = read_regular(path, NO_CAP)
    sha = sha256_hex(data)
    try:
        document = decode_json(data, path)
    except InputError as exc:
        return StepRead(info, sha, ready=False, error=exc)
    return StepRead(info, sha, ready=is_ready(config, document))

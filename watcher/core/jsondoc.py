"""Reading JSON that came from outside: decoding that says where it breaks, schema errors that name the path."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

from watcher.errors import InputError

MAX_REPORTED_ERRORS = 20


def decode_json(data: bytes, file: Path) -> Any:
    """Parse bytes as JSON; an empty, binary or malformed file is an InputError saying where it breaks."""
    if not data.strip():
        raise InputError(file, "empty file: expected a JSON object")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(file, f"not UTF-8 text: invalid byte at offset {exc.start}") from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(file, f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from exc
    except RecursionError as exc:
        raise InputError(file, "invalid JSON: nested too deeply") from exc


def schema_errors(validator: Draft202012Validator, payload: Any) -> list[str]:
    """One line per schema error, ``$.json.path: message``, in a stable order."""
    errors = sorted(validator.iter_errors(payload), key=lambda e: (list(map(str, e.absolute_path)), e.message))
    return [f"{error.json_path}: {error.message}" for error in errors[:MAX_REPORTED_ERRORS]]


def load_validator(file: Path) -> Draft202012Validator:
    """The validator of a schema file we ship (an unreadable one is an installation fault, not an input's)."""
    return Draft202012Validator(json.loads(file.read_text(encoding="utf-8")))

"""Reading JSON that came from outside: decoding that says where it breaks, schema errors that name the path."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

from watcher.errors import InputError

MAX_REPORTED_ERRORS = 20
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _refuse_constant(name: str) -> Any:
    """``NaN``, ``Infinity`` and ``-Infinity`` are not JSON, although Python's decoder takes them by default."""
    raise NonStandardJSON(name)


class NonStandardJSON(ValueError):
    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(name)


def decode_json(data: bytes, file: Path) -> Any:
    """Parse bytes as strict JSON; anything else is an InputError saying where and why it breaks.

    Every way the decoder can fail on hostile input ends here as an InputError, never as a foreign exception: an
    integer of thousands of digits (Python's int conversion limit raises ValueError), nesting deeper than the
    interpreter's stack (RecursionError), a document too large for memory (MemoryError), lone surrogates.
    """
    if not data.strip():
        raise InputError(file, "empty file: expected a JSON object")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(file, f"not UTF-8 text: invalid byte at offset {exc.start}") from exc
    try:
        document = json.loads(text, parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        raise InputError(file, f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from exc
    except NonStandardJSON as exc:
        raise InputError(file, f"not standard JSON: {exc.name} is not a number in JSON (RFC 8259)") from exc
    except RecursionError as exc:
        raise InputError(file, "invalid JSON: nested too deeply") from exc
    except MemoryError as exc:
        raise InputError(file, "invalid JSON: too large to decode in memory") from exc
    except ValueError as exc:  # e.g. "Exceeds the limit (4300 digits) for integer string conversion"
        raise InputError(file, f"invalid JSON: {_first_line(exc)}") from exc
    if _SURROGATE_ESCAPE.search(text) and not _encodable(document):
        # Valid JSON grammar, but no UTF-8 text can hold it: it could be neither logged nor written back.
        raise InputError(file, "not standard JSON: a \\u escape names a lone UTF-16 surrogate (RFC 7493 2.1)")
    return document


def _encodable(document: Any) -> bool:
    """Every string and key encodes as UTF-8 (walked without recursion: the document may be deep)."""
    pending = [document]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
        elif isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return False
    return True


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


def schema_errors(validator: Draft202012Validator, payload: Any, file: Path) -> list[str]:
    """One line per schema error, ``$.json.path: message``, in a stable order.

    A document nested deeper than the validator's recursion can follow is an InputError of ``file``.
    """
    try:
        errors = sorted(validator.iter_errors(payload), key=lambda e: (list(map(str, e.absolute_path)), e.message))
    except RecursionError as exc:
        raise InputError(file, "nested too deeply to validate against its schema") from exc
    return [f"{error.json_path}: {error.message}" for error in errors[:MAX_REPORTED_ERRORS]]


def load_validator(file: Path) -> Draft202012Validator:
    """The validator of a schema file we ship (an unreadable one is an installation fault, not an input's)."""
    return Draft202012Validator(json.loads(file.read_text(encoding="utf-8")))

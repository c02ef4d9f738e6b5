"""Request files: decode, identify, validate against the JSON Schema of their type, check against the config.

A request is a JSON object with a ``type`` (which picks its handler and schema in ``handlers.registry``) and an
optional ``id``. The id becomes a file name (``watcher_decisions/<id>.json``), so it is restricted to
``ID_PATTERN``; without one, the id is the first 16 hex digits of the sha256 of the file's bytes, so the same
content always gets the same id and is decided once.

Validation order: bytes -> UTF-8 -> JSON (errors give line and column) -> object with a known ``type`` -> the
type's pydantic model, strict, whose generated JSON Schema is in ``schemas/`` (on failure the schema's errors
are reported, each with its JSON path) -> the handler's config checks (paths stay inside the root, steps
exist). Every failure is an ``InputError`` naming the file and the rule.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from watcher.config import Settings
from watcher.errors import InputError, SchemaViolation

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
MAX_REPORTED_ERRORS = 20


class RequestBase(BaseModel):
    """Fields every request has. Subclasses set ``type`` to a ``Literal`` of their type name."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: str = Field(description="Request type; picks the handler and the schema.")
    id: str | None = Field(
        None,
        pattern=ID_PATTERN,
        description="Request id, used as the decision's file name. Default: sha256 of the file, 16 hex digits.",
    )


@dataclass(frozen=True)
class Request:
    """A validated request, ready for its handler."""

    id: str
    type: str
    model: RequestBase
    sha256: str


def content_id(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


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


def parse_request(data: bytes, file: Path, settings: Settings) -> Request:
    """Turn a request file's bytes into a validated ``Request``; raises InputError/SchemaViolation."""
    return validate_request(decode_json(data, file), data, file, settings)


def validate_request(payload: Any, data: bytes, file: Path, settings: Settings) -> Request:
    """Validate decoded JSON; raises InputError/SchemaViolation (or PolicyViolation from a handler's check)."""
    from handlers.registry import handler_for, validator_for

    if not isinstance(payload, dict):
        raise InputError(file, f"expected a JSON object, got {type(payload).__name__}")
    request_type = payload.get("type")
    if not isinstance(request_type, str):
        raise SchemaViolation(file, "missing request type", ["$.type: a string naming the request type"])
    spec = handler_for(request_type, file)
    # The schema file is generated from the model (and drift-tested), so strict model validation accepts exactly
    # what the schema accepts, at a fraction of the cost. The schema runs when the model says no: its errors
    # name the JSON path of each problem.
    try:
        model = spec.model.model_validate(payload, strict=True)
    except ValidationError as exc:
        problems = schema_errors(validator_for(spec), payload)
        if problems:
            raise SchemaViolation(file, f"does not match schema {spec.schema_file}", problems) from exc
        details = [f"$.{'.'.join(map(str, err['loc']))}: {err['msg']}" for err in exc.errors()]
        raise SchemaViolation(file, f"does not match request type {request_type!r}", details) from exc
    spec.check(model, settings, file)
    sha = hashlib.sha256(data).hexdigest()
    return Request(id=model.id or sha[:16], type=request_type, model=model, sha256=sha)


def resolve_inside(
    settings: Settings, raw: str, file: Path, allowed: tuple[Path, ...] = (), *, lexical: bool = False
) -> Path:
    """A path from a request, made absolute; it must stay inside the root or one of ``allowed``.

    Symlinks and ``..`` are resolved before the check, so neither can lead out. ``lexical``: when the path, with
    ``..`` taken away as written, is inside, that is enough (no system call); for checks ahead of time, whose
    caller resolves the path again when it uses it. A path that is outside as written is still resolved, so an
    absolute path through a symlink to the root is not refused.
    """
    if "\x00" in raw or not raw.strip():
        raise InputError(file, f"path {raw!r} is not a usable path")
    root = str(settings.root)
    folders = (root, *map(str, allowed))
    joined = os.path.join(root, os.path.expanduser(raw))
    if lexical and inside(written := os.path.normpath(joined), normalised_folders(folders)):
        return Path(written)
    target = os.path.realpath(joined)
    if inside(target, resolved_folders(folders)):
        return Path(target)
    raise InputError(file, f"path {raw!r} leads outside {settings.root}", [f"resolves to {target}"])


def inside(target: str, folders: tuple[str, ...]) -> bool:
    return any(target == folder or target.startswith(folder + os.sep) for folder in folders)


@lru_cache(maxsize=64)
def normalised_folders(folders: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(os.path.normpath(folder) for folder in folders)


@lru_cache(maxsize=64)
def resolved_folders(folders: tuple[str, ...]) -> tuple[str, ...]:
    # Resolved once per configuration: resolving costs a system call per path component.
    return tuple(os.path.realpath(folder) for folder in folders)

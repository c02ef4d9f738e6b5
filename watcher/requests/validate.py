"""Request files: decode, identify, validate against the JSON Schema of their type, check against the config.

A request is a JSON object with a ``type`` (which picks its handler and schema from the registry) and an optional
``id``; a request in the pipeline's own layout names them ``request_type`` and ``request_id``. Without an id, the id
is the content's short sha256 (``watcher.core.ids``), so the same content always gets the same id and is decided
once.

Validation order: bytes -> UTF-8 -> JSON (errors give line and column) -> object with a known ``type`` -> the type's
pydantic model, strict, whose generated JSON Schema is in ``schemas/`` (on failure the schema's errors are reported,
each with its JSON path) -> the handler's config checks (paths stay inside the root, steps exist). Every failure is
an ``InputError`` naming the file and the rule.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from watcher.config import Settings
from watcher.core.ids import sha256_hex, short_id
from watcher.core.jsondoc import decode_json, schema_errors
from watcher.errors import InputError, SchemaViolation
from watcher.requests.contract import HandlerSpec, Registry
from watcher.requests.model import Request


def parse_request(data: bytes, file: Path, settings: Settings, registry: Registry) -> Request:
    """Turn a request file's bytes into a validated ``Request``; raises InputError/SchemaViolation."""
    return validate_request(decode_json(data, file), data, file, settings, registry)


def validate_request(payload: Any, data: bytes, file: Path, settings: Settings, registry: Registry) -> Request:
    """Validate decoded JSON; raises InputError/SchemaViolation (or PolicyViolation from a handler's check)."""
    if not isinstance(payload, dict):
        raise InputError(file, f"expected a JSON object, got {type(payload).__name__}")
    spec = spec_of(payload, file, registry)
    request_type = spec.request_type
    # The schema file is generated from the model (and drift-tested), so strict model validation accepts exactly
    # what the schema accepts, at a fraction of the cost. The schema runs when the model says no: its errors
    # name the JSON path of each problem.
    try:
        model = spec.model.model_validate(payload, strict=True)
    except ValidationError as exc:
        problems = schema_errors(registry.validator_for(spec), payload, file)
        if problems:
            raise SchemaViolation(file, f"does not match schema {spec.schema_file}", problems) from exc
        details = [f"$.{'.'.join(map(str, err['loc']))}: {err['msg']}" for err in exc.errors()]
        raise SchemaViolation(file, f"does not match request type {request_type!r}", details) from exc
    spec.check(model, settings, file)
    sha = sha256_hex(data)
    request_id = getattr(model, spec.id_key, None) or short_id(sha)
    return Request(id=request_id, type=request_type, model=model, sha256=sha, spec=spec)


def spec_of(payload: dict[str, Any], file: Path, registry: Registry) -> HandlerSpec:
    """The handler a request names: by ``type``, or by ``request_type`` (the pipeline's layout)."""
    for key in registry.type_keys():
        if key in payload:
            value = payload[key]
            if not isinstance(value, str):
                raise SchemaViolation(file, "request type is not a string", [f"$.{key}: a string naming the type"])
            return registry.handler_for(value, file, key)
    keys = " or ".join(f"$.{key}" for key in registry.type_keys())
    raise SchemaViolation(file, "missing request type", [f"{keys}: a string naming the request type"])

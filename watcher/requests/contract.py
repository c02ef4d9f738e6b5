"""The contract between the daemon and a request handler, and the registry of handlers by request type.

To add a request type, write a module in ``handlers/`` that defines its pydantic model (a ``RequestBase`` subclass,
or a ``PipelineRequest`` for the pipeline's own layout), a ``check`` (config rules that a schema cannot express) and
a ``handle`` function, exposes them as ``HANDLER = HandlerSpec(...)``, and add it to ``handlers.HANDLERS``. Its JSON
Schema is generated into ``schemas/`` by ``make schemas``. The registry is built from that list by whoever runs
requests (the daemon, the commands), so nothing here imports a handler.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from pydantic import BaseModel

from watcher.config import Settings
from watcher.core.datadirs import schema_path
from watcher.core.jsondoc import load_validator
from watcher.errors import InputError
from watcher.judging.protocols import StepJudge


@dataclass(frozen=True)
class HandlerContext:
    """What a handler may use: the config, the judge, and the id its log lines and records carry."""

    settings: Settings
    judge: StepJudge
    request_id: str
    # Set when a person approved this run (``watcher approve``): who, when, which escalation, the note.
    approval: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class HandlerSpec:
    request_type: str
    model: type[BaseModel]
    # Raises InputError or PolicyViolation when the request breaks a rule of the config (run before the claim).
    check: Callable[[Any, Settings, Path], None]
    # Does the work; returns the body of the decision record (JSON-ready).
    handle: Callable[[Any, HandlerContext], Mapping[str, Any]]
    # The key that names the type in a request file, and the one holding its id: ``type``/``id`` for ours,
    # ``request_type``/``request_id`` for the layout the pipeline's Chapter 13 writes.
    type_key: str = "type"
    id_key: str = "id"

    @property
    def schema_file(self) -> str:
        return f"request_{self.request_type}.schema.json"


class Registry:
    """Request type -> handler; a request names its type under the key its spec declares."""

    def __init__(self, specs: Iterable[HandlerSpec]) -> None:
        self.specs = {spec.request_type: spec for spec in specs}

    def handler_for(self, request_type: str, file: Path, type_key: str = "type") -> HandlerSpec:
        spec = self.specs.get(request_type)
        if spec is None or spec.type_key != type_key:
            known = ", ".join(sorted(name for name, s in self.specs.items() if s.type_key == type_key))
            what = "request type" if type_key == "type" else type_key
            raise InputError(file, f"unknown {what} {request_type!r}; known types: {known}") from None
        return spec

    def type_keys(self) -> list[str]:
        """The keys that can name a request's type, ``type`` first."""
        return list(dict.fromkeys(["type", *(spec.type_key for spec in self.specs.values())]))

    def validator_for(self, spec: HandlerSpec) -> Draft202012Validator:
        return _validator(spec.schema_file)

    def schema_models(self) -> dict[str, type[BaseModel]]:
        """Schema file name -> request model, for the generated schemas."""
        return {spec.schema_file: spec.model for spec in self.specs.values()}


@cache
def _validator(schema_file: str) -> Draft202012Validator:
    return load_validator(schema_path(schema_file))

"""The contract between the daemon and a request handler, and the registry of handlers by request type.

To add a request type, write a module in ``handlers/`` that defines its pydantic model (a ``RequestBase``
subclass), a ``check`` (config rules that a schema cannot express) and a ``handle`` function, exposes them as
``HANDLER = HandlerSpec(...)``, and add it to ``handlers.HANDLERS``. Its JSON Schema is generated into
``schemas/`` by ``make schemas``. The registry is built from that list by whoever runs requests (the daemon, the
commands), so nothing here imports a handler.
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
from watcher.requests.model import RequestBase


@dataclass(frozen=True)
class HandlerContext:
    """What a handler may use: the config, the judge, and the id its log lines and records carry."""

    settings: Settings
    judge: StepJudge
    request_id: str


@dataclass(frozen=True)
class HandlerSpec:
    request_type: str
    model: type[RequestBase]
    # Raises InputError or PolicyViolation when the request breaks a rule of the config (run before the claim).
    check: Callable[[Any, Settings, Path], None]
    # Does the work; returns the body of the decision record (JSON-ready).
    handle: Callable[[Any, HandlerContext], Mapping[str, Any]]

    @property
    def schema_file(self) -> str:
        return f"request_{self.request_type}.schema.json"


class Registry:
    """Request type -> handler."""

    def __init__(self, specs: Iterable[HandlerSpec]) -> None:
        self.specs = {spec.request_type: spec for spec in specs}

    def handler_for(self, request_type: str, file: Path) -> HandlerSpec:
        try:
            return self.specs[request_type]
        except KeyError:
            known = ", ".join(sorted(self.specs))
            raise InputError(file, f"unknown request type {request_type!r}; known types: {known}") from None

    def validator_for(self, spec: HandlerSpec) -> Draft202012Validator:
        return _validator(spec.schema_file)

    def schema_models(self) -> dict[str, type[BaseModel]]:
        """Schema file name -> request model, for the generated schemas."""
        return {spec.schema_file: spec.model for spec in self.specs.values()}


@cache
def _validator(schema_file: str) -> Draft202012Validator:
    return load_validator(schema_path(schema_file))

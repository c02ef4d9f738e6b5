"""Request types and their handlers: ``type`` -> ``HandlerSpec``.

To add a request type, write a module in ``handlers/`` that defines its pydantic model (a ``RequestBase``
subclass), a ``check`` (config rules that a schema cannot express) and a ``handle`` function, exposes them as
``HANDLER = HandlerSpec(...)``, and add the module to ``HANDLER_MODULES``. Its JSON Schema is generated into
``schemas/`` by ``python -m watcher.schemagen``.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from pydantic import BaseModel

from watcher.config import Settings
from watcher.errors import InputError
from watcher.protocols import StepJudge
from watcher.requests import RequestBase
from watcher.resources import schema_path

HANDLER_MODULES = (
    "handlers.step_evaluation",
    "handlers.chapter_13",
    "handlers.run_selfplay",
    "handlers.run_learning_loop",
)


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
    # Does the work; returns the decision record (JSON-ready).
    handle: Callable[[Any, HandlerContext], Mapping[str, Any]]

    @property
    def schema_file(self) -> str:
        return f"request_{self.request_type}.schema.json"


@cache
def handlers() -> dict[str, HandlerSpec]:
    specs: dict[str, HandlerSpec] = {}
    for name in HANDLER_MODULES:
        spec: HandlerSpec = importlib.import_module(name).HANDLER
        specs[spec.request_type] = spec
    return specs


def handler_for(request_type: str, file: Path) -> HandlerSpec:
    try:
        return handlers()[request_type]
    except KeyError:
        known = ", ".join(sorted(handlers()))
        raise InputError(file, f"unknown request type {request_type!r}; known types: {known}") from None


@cache
def validator_for(spec: HandlerSpec) -> Draft202012Validator:
    schema = json.loads(schema_path(spec.schema_file).read_text(encoding="utf-8"))
    return Draft202012Validator(schema)


def request_schema_models() -> dict[str, type[BaseModel]]:
    """Schema file name -> request model, for ``watcher.schemagen``."""
    return {spec.schema_file: spec.model for spec in handlers().values()}

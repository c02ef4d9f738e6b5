"""What every config model shares: frozen, no unknown keys, and errors that name the file and the key path."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from watcher.errors import ConfigError

M = TypeVar("M", bound=BaseModel)


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


def load_model(file: Path, model: type[M]) -> M:
    data = read_json(file)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise config_error_from(file, exc) from None


def read_json(file: Path) -> Any:
    """Parse a JSON file; errors name the file, and the line and column of a syntax error."""
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(file, "", "file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(file, "", f"cannot read: {exc}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(file, f"line {exc.lineno} column {exc.colno}", f"invalid JSON: {exc.msg}") from None


def config_error_from(file: Path, exc: ValidationError) -> ConfigError:
    """One ConfigError whose text has one line per broken rule: ``file: key.path: rule``."""
    lines = [f"{format_loc(err['loc'])}: {err['msg']}" for err in exc.errors()]
    first = exc.errors()[0]
    error = ConfigError(file, format_loc(first["loc"]), first["msg"])
    if len(lines) > 1:
        error.args = ("\n".join(f"{file}: {line}" for line in lines),)
    return error


def format_loc(loc: tuple[int | str, ...]) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        elif "[" in item or "function-after" in item:
            continue  # pydantic's internal validator labels are not key paths
        else:
            parts.append(f".{item}" if parts else item)
    return "".join(parts) or "(top level)"

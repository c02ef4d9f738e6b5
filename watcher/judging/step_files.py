"""Step output files: which step a file belongs to, and reading one into a validated document.

The step of a file is decided here and nowhere else: first by the steps' ``output_glob`` (what the daemon's
watch uses too, through :func:`watcher.config.outputs.steps_for`), then, for a copy kept elsewhere, by the one step
whose schema the file matches.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

from watcher.config import Settings, StepConfig
from watcher.config.outputs import steps_for
from watcher.core.datadirs import schema_path
from watcher.core.ids import sha256_hex
from watcher.core.jsondoc import decode_json, load_validator, schema_errors
from watcher.core.regular import read_regular
from watcher.errors import InputError, SchemaViolation


@dataclass(frozen=True)
class StepOutput:
    """A step output file that matched its schema."""

    step: str
    config: StepConfig
    file: Path
    data: Any
    sha256: str


def detect_step(settings: Settings, file: Path) -> str:
    """The one step whose ``output_glob`` (relative to the root) matches ``file``; failing that, the one step
    whose schema the file matches (a copy of an output kept elsewhere)."""
    by_glob = steps_for(settings, file)
    if len(by_glob) == 1:
        return by_glob[0]
    if by_glob:
        raise InputError(file, f"matches the output_glob of steps {', '.join(by_glob)}; name the step (--step N)")
    by_schema = steps_whose_schema_matches(settings, file)
    if len(by_schema) == 1:
        return by_schema[0]
    found = f"the schemas of steps {', '.join(by_schema)}" if by_schema else "no step's schema"
    raise InputError(file, f"matches no step's output_glob and {found}; name the step (--step N)")


def steps_whose_schema_matches(settings: Settings, file: Path) -> list[str]:
    """Read once; a file that cannot be read or parsed raises its own InputError rather than matching nothing."""
    document = decode_json(read_step_bytes(settings, file), file)
    steps = settings.watcher.steps.items()
    return [step for step, config in steps if not schema_errors(_step_validator(config.schema_file), document, file)]


@cache
def _step_validator(schema_file: str) -> Draft202012Validator:
    return load_validator(schema_path(schema_file))


def read_step_bytes(settings: Settings, file: Path) -> bytes:
    """A regular file's bytes (a symlink a person named is followed; a FIFO or device is refused, unread)."""
    try:
        return read_regular(file, settings.watcher.limits.max_file_bytes, follow=True)[0]
    except OSError as exc:
        raise InputError(file, f"cannot read: {exc.strerror or exc}") from exc


def load_step_output(settings: Settings, file: Path, step: str) -> StepOutput:
    """Read and validate a step output; InputError/SchemaViolation name the file and the broken rule."""
    config = settings.watcher.steps.get(step)
    if config is None:
        raise InputError(file, f"step {step!r} is not configured; steps are {', '.join(settings.watcher.steps)}")
    data = read_step_bytes(settings, file)
    document = decode_json(data, file)
    problems = schema_errors(_step_validator(config.schema_file), document, file)
    if problems:
        raise SchemaViolation(file, f"does not match schema {config.schema_file} (step {step})", problems)
    return StepOutput(step, config, file, document, sha256_hex(data))

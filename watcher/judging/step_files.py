"""Step output files: which step a file belongs to, and reading one into a validated document.

The step of a file is decided here and nowhere else: first by the steps' ``output_glob`` (what the daemon's
watch uses too, through :func:`watcher.config.outputs.steps_for`), then, for a copy kept elsewhere, by the one step
whose schema the file matches.

Step outputs are never rejected for their size (``limits.max_file_bytes`` is for requests): an output whose step
has a ``stream`` spec is summarised by streaming (:mod:`watcher.judging.streaming`), any other is read whole.
Its schema names the keys a judgement uses; keys it does not name are accepted and listed (``unknown_keys``), as
the pipeline adds keys from release to release. A step's ``ready_when`` says when a file rewritten while the step
runs is finished: before that, :class:`StepNotReady`.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from fnmatch import fnmatchcase
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

from watcher.config import Settings, StepConfig, StreamSpec
from watcher.config.outputs import steps_for
from watcher.core.datadirs import schema_path
from watcher.core.ids import sha256_hex
from watcher.core.jsondoc import decode_json, load_validator, schema_errors
from watcher.core.regular import read_regular
from watcher.errors import InputError, SchemaViolation, StepNotReady
from watcher.judging.checks import lookup
from watcher.judging.streaming import summarize_array

MAX_UNKNOWN_KEYS = 50
UNCAPPED = sys.maxsize - 1  # step outputs have no size cap: the pipeline decides how big its files are


@dataclass(frozen=True)
class StepOutput:
    """A step output file that matched its schema (for a streamed step: its summary, which the checks read)."""

    step: str
    config: StepConfig
    file: Path
    data: Any
    sha256: str
    unknown_keys: tuple[str, ...] = ()


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
    """Read once; a file that cannot be read or parsed raises its own InputError rather than matching nothing.

    A file that is one JSON array is matched against the streamed steps by its first records. This reads the file
    whole: a large output kept outside its step's glob is best named with ``--step``, which streams it."""
    document = decode_json(read_step_bytes(file), file)
    matches = []
    for step, config in settings.watcher.steps.items():
        candidate = document[: config.stream.sample] if config.stream and isinstance(document, list) else document
        if not schema_errors(_step_validator(config.schema_file), candidate, file):
            matches.append(step)
    return matches


@cache
def _step_validator(schema_file: str) -> Draft202012Validator:
    return load_validator(schema_path(schema_file))


def read_step_bytes(file: Path) -> bytes:
    """A step output that is not streamed, read whole with no size cap; a regular file only (a symlink a person
    named is followed; a FIFO or device is refused, unread)."""
    try:
        return read_regular(file, UNCAPPED, follow=True)[0]
    except OSError as exc:
        raise InputError(file, f"cannot read: {exc.strerror or exc}") from exc


def is_ready(config: StepConfig, document: Any) -> bool:
    """Whether ``ready_when`` holds (always, without one). JMESPath truth: false, null, "", [] and {} are false."""
    if config.ready_when is None:
        return True
    found, value = lookup(document, config.ready_when)
    return found and value is not False and value not in ("", [], {})


def unknown_keys(schema: Any, document: Any, prefix: str = "$") -> list[str]:
    """Key paths in ``document`` that the schema does not name (where it names an object's properties)."""
    if not isinstance(schema, dict) or not isinstance(document, dict) or "properties" not in schema:
        return []
    properties = schema["properties"]
    found: list[str] = []
    for key, value in document.items():
        path = f"{prefix}.{key}"
        if key in properties:
            found.extend(unknown_keys(properties[key], value, path))
        elif not any(re.search(pattern, key) for pattern in schema.get("patternProperties", {})):
            found.append(path)
    return found[:MAX_UNKNOWN_KEYS]


def load_step_output(settings: Settings, file: Path, step: str) -> StepOutput:
    """Read and validate a step output; InputError/SchemaViolation name the file and the broken rule."""
    config = settings.watcher.steps.get(step)
    if config is None:
        raise InputError(file, f"step {step!r} is not configured; steps are {', '.join(settings.watcher.steps)}")
    validator = _step_validator(config.schema_file)
    if config.stream is not None:
        # Checked on its first records (kept whole in the summary); the aggregates cover every record.
        document, sha256 = summarize_array(file, config.stream)
        checked: Any = document["sample"]
        items = validator.schema.get("items") if isinstance(validator.schema, dict) else None
        extra = unknown_keys(items, checked[0] if checked else None, "$[0]")
    else:
        data = read_step_bytes(file)
        document = checked = decode_json(data, file)
        sha256 = sha256_hex(data)
        extra = unknown_keys(validator.schema, document)
    # Readiness first: a version written mid-run may lack keys the final one has, and must wait, not fail.
    if not is_ready(config, document):
        raise StepNotReady(file, step, str(config.ready_when))
    problems = schema_errors(validator, checked, file)
    if problems:
        raise SchemaViolation(file, f"does not match schema {config.schema_file} (step {step})", problems)
    return StepOutput(step, config, file, document, sha256, tuple(extra))


class Companions:
    """Second files that a step's checks read (``Check.file``), each read once per evaluation.

    ``file`` is relative to the folder of the judged file: in the pipeline's layout that is where the step wrote
    both, and a copy of the two kept elsewhere (an example, a labelled case) is judged the same way. A file that
    is some streamed step's output (by its glob, or by its glob's file name) is read as that step's summary, so a
    check on the survivors next to step 1's config costs one streaming pass, never a whole load.
    """

    def __init__(self, settings: Settings, source: Path) -> None:
        self.settings, self.folder = settings, source.parent
        self._read: dict[str, tuple[bool, Any]] = {}

    def __call__(self, name: str) -> tuple[bool, Any]:
        if name not in self._read:
            self._read[name] = self._load(self.folder / name)
        return self._read[name]

    def _load(self, file: Path) -> tuple[bool, Any]:
        if not file.is_file():
            return False, None
        spec = stream_spec_for(self.settings, file)
        try:
            if spec is not None:
                return True, summarize_array(file, spec)[0]
            return True, decode_json(read_step_bytes(file), file)
        except InputError:  # unreadable or not JSON: its checks report the value as missing
            return False, None


def stream_spec_for(settings: Settings, file: Path) -> StreamSpec | None:
    """The stream spec of the step that writes ``file``: by output_glob, else by the glob's file name part."""
    steps = settings.watcher.steps
    by_glob = [steps[step].stream for step in steps_for(settings, file)]
    by_name = [cfg.stream for cfg in steps.values() if fnmatchcase(file.name, Path(cfg.output_glob).name)]
    return next((spec for spec in (*by_glob, *by_name) if spec is not None), None)

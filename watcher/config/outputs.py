"""Where the pipeline's steps write, from their ``output_glob``: the folders to watch, and which step a path is.

Globs are relative to ``pipeline_root`` unless absolute. A path matches a glob with ``fnmatch`` rules (``*``
also crosses folders), the same for the daemon's watch and for ``watcher evaluate``/``check``, so both name the
same step.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from fnmatch import fnmatchcase
from functools import lru_cache
from pathlib import Path

from watcher.config.settings import Settings

WILDCARDS = frozenset("*?[")


def fixed_prefix(glob: str) -> Path:
    """The folders of a glob up to its first wildcard: ``out/*/x.json`` -> ``out``."""
    folders = Path(glob).parts[:-1]
    cut = next((i for i, part in enumerate(folders) if WILDCARDS & set(part)), len(folders))
    return Path(*folders[:cut])


def has_wild_folders(glob: str) -> bool:
    """True when a wildcard stands in a folder part: the watch must then reach below the fixed prefix."""
    return any(WILDCARDS & set(part) for part in Path(glob).parts[:-1])


def output_folders(settings: Settings) -> tuple[Path, ...]:
    """The folder part (before any wildcard) of every step's output_glob: the places step outputs may live."""
    return _output_folders(settings.pipeline_root, tuple(step.output_glob for step in settings.watcher.steps.values()))


@lru_cache(maxsize=64)
def _output_folders(root: Path, globs: tuple[str, ...]) -> tuple[Path, ...]:
    return tuple(dict.fromkeys(root / fixed_prefix(glob) for glob in globs))


def step_globs(settings: Settings) -> dict[str, str]:
    """Step -> glob of its output files."""
    return {step: cfg.output_glob for step, cfg in settings.watcher.steps.items()}


def iter_matching_steps(globs: Mapping[str, str], path: str, relative: str) -> Iterator[str]:
    """Steps whose glob matches ``path`` (absolute) or ``relative`` (to pipeline_root), in config order."""
    for step, pattern in globs.items():
        if fnmatchcase(path if os.path.isabs(pattern) else relative, pattern):
            yield step


def steps_for(settings: Settings, file: Path) -> list[str]:
    """Every step whose glob matches ``file``, as written or with symlinks resolved."""
    globs = step_globs(settings)
    found: dict[str, None] = {}
    for candidate in dict.fromkeys((settings.path(file), file.resolve())):
        relative = os.path.relpath(candidate, settings.pipeline_root)
        found |= dict.fromkeys(iter_matching_steps(globs, str(candidate), relative))
    return list(found)

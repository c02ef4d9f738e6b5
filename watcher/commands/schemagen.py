"""Writes the JSON Schemas generated from the pydantic models into ``schemas/``; ``--check`` reports drift.

Run ``python -m watcher.commands.schemagen`` after changing a model (``make schemas``).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from pydantic import BaseModel

from handlers import registry
from watcher.config import LLMServerConfig, WatcherConfig
from watcher.core.datadirs import packaged_dir
from watcher.judging.records import decision_schemas

# File name in schemas/ -> the model that is the source of truth for it.
SCHEMAS: dict[str, type[BaseModel]] = {
    "llm_server_config.schema.json": LLMServerConfig,
    "watcher_config.schema.json": WatcherConfig,
    **decision_schemas(),
    **registry().schema_models(),
}


def render(model: type[BaseModel]) -> str:
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", **model.model_json_schema()}
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def drifted(folder: Path) -> list[str]:
    """Names of schema files that are missing or differ from what their model generates."""
    out = []
    for name, model in SCHEMAS.items():
        path = folder / name
        if not path.is_file() or path.read_text(encoding="utf-8") != render(model):
            out.append(name)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="exit 1 if a schema file is out of date")
    args = parser.parse_args(argv)
    folder = packaged_dir("schemas")
    if args.check:
        stale = drifted(folder)
        for name in stale:
            sys.stderr.write(f"{folder / name}: out of date; run `make schemas`\n")
        return 1 if stale else 0
    for name, model in SCHEMAS.items():
        (folder / name).write_text(render(model), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

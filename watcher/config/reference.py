"""The README's config reference, generated from the models so it cannot fall behind them.

``python -m watcher.config.reference`` prints the Markdown; ``--write README.md`` replaces the block between the
``<!-- config-reference:start -->`` and ``<!-- config-reference:end -->`` markers.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from watcher.config import Check, LLMServerConfig, ServerConfig, StepConfig, WatcherConfig
from watcher.config.base import load_model
from watcher.config.jobs import (
    JobConfig,
    JobsConfig,
    LearningLoopConfig,
    LoopStepConfig,
    ParameterPolicy,
    ParameterSlot,
    PolicyConfig,
)
from watcher.config.steps import step_order
from watcher.core.datadirs import packaged_dir

START = "<!-- config-reference:start -->"
END = "<!-- config-reference:end -->"

SECTIONS: tuple[tuple[str, str, type[BaseModel]], ...] = (
    ("config/llm_server_config.json", "", LLMServerConfig),
    ("config/llm_server_config.json", "servers.<name>.", ServerConfig),
    ("config/watcher.json", "", WatcherConfig),
    ("config/watcher.json", "steps.<n>.", StepConfig),
    ("config/watcher.json", "checks.<n>[].", Check),
    ("config/watcher.json", "jobs.", JobsConfig),
    ("config/watcher.json", "jobs.selfplay.", JobConfig),
    ("config/watcher.json", "jobs.selfplay.parameters.<name>.", ParameterSlot),
    ("config/watcher.json", "learning_loop.", LearningLoopConfig),
    ("config/watcher.json", "learning_loop.steps[].", LoopStepConfig),
    ("config/watcher.json", "policy.", PolicyConfig),
    ("config/watcher.json", "policy.parameters.<name>.", ParameterPolicy),
)
# Models rendered as their own section (or expanded inline) instead of as one opaque row.
EXPANDED = {
    ServerConfig,
    StepConfig,
    Check,
    JobsConfig,
    JobConfig,
    ParameterSlot,
    LearningLoopConfig,
    LoopStepConfig,
    PolicyConfig,
    ParameterPolicy,
}


def _default(info: FieldInfo) -> str:
    if info.is_required():
        return "required"
    value = info.get_default(call_default_factory=True)
    if isinstance(value, BaseModel):
        return "see below"
    if isinstance(value, Path):
        value = str(value)
    if isinstance(value, tuple):
        value = list(value)
    return f"`{json.dumps(value)}`"


def _rows(prefix: str, model: type[BaseModel]) -> Iterator[tuple[str, str, str]]:
    for name, info in model.model_fields.items():
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel) and annotation not in EXPANDED:
            yield from _rows(f"{prefix}{name}.", annotation)
            continue
        description = (info.description or "").replace("|", "\\|")
        yield f"`{prefix}{name}`", _default(info), description


def render() -> str:
    lines: list[str] = []
    for file, prefix, model in SECTIONS:
        lines += [f"#### `{file}`: `{prefix or '(top level)'}`", "", "| key | default | meaning |", "|---|---|---|"]
        lines += [f"| {key} | {default} | {text} |" for key, default, text in _rows(prefix, model)]
        lines.append("")
    return "\n".join(lines + _shipped_checks())


def _threshold(check: Check) -> str:
    if check.range is not None:
        text = f"between {check.range[0]:g} and {check.range[1]:g}"
    elif check.values is not None:
        text = f"{check.op.replace('_', ' ')} {json.dumps(list(check.values))}"
    else:
        text = f"{check.op} {check.value:g}"
    if check.hard_limit is not None:
        text += f", hard beyond {check.hard_limit:g}"
    if check.hard_range is not None:
        text += f", hard outside {check.hard_range[0]:g}..{check.hard_range[1]:g}"
    return text


def _code(text: str) -> str:
    """Inline code; a JMESPath literal has backticks of its own, so such a span is fenced with two."""
    return f"`` {text} ``" if "`" in text else f"`{text}`"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _shipped_checks() -> list[str]:
    """The shipped profile's checks with where each threshold comes from (the pipeline's file:line)."""
    shipped = load_model(packaged_dir("config") / "watcher.json", WatcherConfig)
    lines = [
        "#### Shipped step checks (`config/watcher.json` `checks`), with their sources",
        "",
        "Sources are files of the pipeline (mmercalde/prng_cluster_public); where its sources disagree, the "
        "source names the one followed and why.",
        "",
        "| step | value | threshold | severity | source |",
        "|---|---|---|---|---|",
    ]
    for step in sorted(shipped.checks, key=step_order):
        for check in shipped.checks[step]:
            value = f"`{check.file}`: {_code(check.path)}" if check.file else _code(check.path)
            row = (f"{step} {shipped.steps[step].name}", value, _threshold(check), check.severity, check.source)
            lines.append("| " + " | ".join(_cell(cell) for cell in row) + " |")
    lines.append("")
    return lines


def replace_block(text: str, block: str) -> str:
    head, _, rest = text.partition(START)
    _, _, tail = rest.partition(END)
    return f"{head}{START}\n{block}{END}{tail}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--write", type=Path, help="README file whose reference block is replaced")
    args = parser.parse_args(argv)
    if args.write is None:
        sys.stdout.write(render())
        return 0
    args.write.write_text(replace_block(args.write.read_text(encoding="utf-8"), render()), encoding="utf-8")
    return 0


def current_block(readme: str) -> str | None:
    if START not in readme or END not in readme:
        return None
    return readme.split(START, 1)[1].split(END, 1)[0].lstrip("\n")


def is_current(readme: str) -> bool:
    return current_block(readme) == render()


if __name__ == "__main__":
    raise SystemExit(main())

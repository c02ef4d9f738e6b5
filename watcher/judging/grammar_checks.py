"""``watcher grammars check``: every grammar file parses, is lint-clean, has its answer schema and compiles; every
step names a grammar whose answers carry a decision."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from watcher.config import Settings, step_order
from watcher.core.datadirs import schema_path
from watcher.errors import GrammarError
from watcher.grammars.gbnf import parse
from watcher.grammars.lint import lint
from watcher.grammars.loader import GRAMMAR_FILES, LoadedGrammar, grammar_for_step, grammar_path, load_grammar
from watcher.judging.answers import GRAMMAR_MODELS, answer_schema_file


@dataclass(frozen=True)
class CheckRow:
    subject: str
    ok: bool | None  # None: could not be checked here
    detail: str


def syntax_problems(grammar: LoadedGrammar) -> list[str]:
    """Parse errors and lint findings of a grammar (no model, no llguidance needed)."""
    try:
        tree = parse(grammar.text, str(grammar.path))
    except GrammarError as exc:
        return [str(exc)]
    return [str(issue) for issue in lint(tree)]


def check_grammar(name: str, compile_with: Callable[[str], None] | None) -> CheckRow:
    """One grammar: readable, parses, lint-clean, has its schema and, when ``compile_with`` is given, compiles."""
    try:
        grammar = load_grammar(name)
    except GrammarError as exc:
        return CheckRow(f"grammar {name}", False, str(exc))
    problems = syntax_problems(grammar)
    if not schema_path(answer_schema_file(name)).is_file():
        problems.append(f"schema {answer_schema_file(name)} is missing (python -m watcher.commands.schemagen)")
    if problems:
        return CheckRow(f"grammar {name}", False, "; ".join(problems))
    if compile_with is None:
        return CheckRow(f"grammar {name}", None, f"lint clean, compile not checked ({grammar.sha256[:12]})")
    try:
        compile_with(grammar.text)
    except GrammarError as exc:
        return CheckRow(f"grammar {name}", False, f"does not compile: {exc}")
    return CheckRow(f"grammar {name}", True, f"compiles, lint clean ({grammar.sha256[:12]})")


def check_steps(settings: Settings) -> Iterable[CheckRow]:
    """Every configured step names a known grammar whose file exists and whose answers carry a decision."""
    for step in sorted(settings.watcher.steps, key=step_order):
        name = grammar_for_step(settings, step)
        if name not in GRAMMAR_FILES:
            yield CheckRow(f"step {step}", False, f"grammar {name!r} is not one of {', '.join(GRAMMAR_FILES)}")
        elif not grammar_path(name).is_file():
            yield CheckRow(f"step {step}", False, f"grammar {name!r}: {grammar_path(name)} is missing")
        elif "decision" not in GRAMMAR_MODELS[name].model_fields:
            yield CheckRow(f"step {step}", False, f"grammar {name!r} has no decision field; steps need one")
        else:
            yield CheckRow(f"step {step}", True, f"-> {name}")


def check_all(settings: Settings, compile_with: Callable[[str], None] | None) -> list[CheckRow]:
    rows = [check_grammar(name, compile_with) for name in GRAMMAR_FILES]
    return rows + list(check_steps(settings))

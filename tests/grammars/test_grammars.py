"""Grammars offline: they compile, they are lint-clean, the loader finds and caches them, steps map to them."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
from pathlib import Path

import httpx
import pytest

from tests.support.helpers import free_port
from tests.support.trust_fixtures import trust_settings
from watcher import cli
from watcher.commands.schemagen import render
from watcher.config import load_settings
from watcher.core.datadirs import SOURCE_ROOT
from watcher.errors import ConfigError, GrammarError
from watcher.grammars import loader as grammars
from watcher.grammars.gbnf import parse
from watcher.grammars.lint import lint
from watcher.grammars.loader import (
    DEFAULT_STEP_GRAMMARS,
    GRAMMAR_FILES,
    grammar_for_step,
    llguidance_compile,
    load_grammar,
)
from watcher.judging.answers import GRAMMAR_MODELS
from watcher.judging.grammar_checks import check_grammar
from watcher.judging.records import decision_schemas
from watcher.llm.client import LlamaClient

pytestmark = pytest.mark.timeout(60)


@pytest.mark.parametrize("name", sorted(GRAMMAR_FILES))
def test_every_grammar_compiles_with_llguidance(name: str) -> None:
    llguidance_compile(load_grammar(name).text)


@pytest.mark.parametrize("name", sorted(GRAMMAR_FILES))
def test_every_grammar_is_lint_clean_and_has_a_model(name: str) -> None:
    grammar = load_grammar(name)
    assert lint(parse(grammar.text, str(grammar.path))) == []
    assert name in GRAMMAR_MODELS


def test_llguidance_rejects_a_grammar_that_does_not_compile() -> None:
    with pytest.raises(GrammarError):
        llguidance_compile('root ::= "a" missing-rule')


# ---------------------------------------------------------------------------------------------------------------
# Lint
# ---------------------------------------------------------------------------------------------------------------


def kinds(text: str) -> set[tuple[str, str]]:
    return {(issue.rule, issue.kind) for issue in lint(parse(text))}


def test_lint_flags_unbounded_whitespace() -> None:
    found = kinds('root ::= "{" ws "}"\nws ::= [ \\t\\n]*')
    assert ("ws", "unbounded-whitespace") in found


def test_lint_flags_unbounded_repetition_that_is_not_whitespace() -> None:
    assert kinds("root ::= [a-z]+") == {("root", "unbounded-repetition")}


def test_lint_accepts_bounded_whitespace() -> None:
    assert kinds('root ::= "{" ws "}"\nws ::= (" " | "\\n" " "{0,8})?') == set()


def test_lint_flags_direct_left_recursion() -> None:
    found = kinds('root ::= expr\nexpr ::= expr "+" term | term\nterm ::= [0-9]')
    assert ("expr", "left-recursion") in found


def test_lint_flags_left_recursion_behind_a_nullable_prefix() -> None:
    found = kinds('root ::= item\nitem ::= pad item "x" | "y"\npad ::= " "?')
    assert ("item", "left-recursion") in found


def test_lint_flags_recursion_that_is_not_left_recursion() -> None:
    found = kinds('root ::= "[" root? "]"')
    assert found == {("root", "recursion")}


def test_lint_flags_rule_names_undefined_and_unused_rules() -> None:
    found = kinds('root ::= camelCase\ncamelCase ::= "a"\nspare ::= "b"')
    assert ("camelCase", "bad-rule-name") in found
    assert ("spare", "unused-rule") in found
    assert kinds("root ::= nowhere") == {("root", "undefined-rule")}


def test_parse_errors_name_the_source_and_line() -> None:
    with pytest.raises(GrammarError, match=r"g\.gbnf: line 2: expected `\)`"):
        parse('root ::= a\na ::= ("x" | "y"', "g.gbnf")


def test_parser_reads_escapes_and_classes() -> None:
    tree = parse('root ::= "\\x41\\u00e9\\n" [^"\\\\\\x00-\\x1f]')
    literal, chars = tree.rules["root"].items  # type: ignore[union-attr]
    assert literal.text == "Aé\n"
    assert chars.allows("a") and not chars.allows('"') and not chars.allows("\x05")


# ---------------------------------------------------------------------------------------------------------------
# Loader
# ---------------------------------------------------------------------------------------------------------------


def test_load_grammar_gives_text_and_sha256_from_any_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    grammar = load_grammar("agent_decision")
    data = (SOURCE_ROOT / "agent_grammars" / "agent_decision.gbnf").read_bytes()
    assert grammar.path.is_absolute()
    assert grammar.text == data.decode()
    assert grammar.sha256 == hashlib.sha256(data).hexdigest()


def test_load_grammar_is_cached_and_rereads_an_edited_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "agent_grammars"
    shutil.copytree(SOURCE_ROOT / "agent_grammars", folder)
    monkeypatch.setattr(grammars, "grammar_dir", lambda: folder)
    first = load_grammar("json_generic")
    assert load_grammar("json_generic") is first
    path = folder / "json_generic.gbnf"
    path.write_text(first.text + "# edited\n")
    os.utime(path, ns=(1, first_mtime_plus_one(path)))
    second = load_grammar("json_generic")
    assert second.text.endswith("# edited\n")
    assert second.sha256 != first.sha256


def first_mtime_plus_one(path: Path) -> int:
    return path.stat().st_mtime_ns + 1_000_000_000


def test_unknown_or_missing_grammar_is_a_grammar_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(GrammarError, match="unknown grammar 'nope'"):
        load_grammar("nope")
    monkeypatch.setattr(grammars, "grammar_dir", lambda: tmp_path)
    with pytest.raises(GrammarError, match=r"chapter_13\.gbnf: cannot read grammar"):
        load_grammar("chapter_13")


def test_steps_map_to_grammars_from_config_with_the_table_as_default(tmp_path: Path) -> None:
    settings = trust_settings(tmp_path)
    assert {step: grammar_for_step(settings, step) for step in settings.watcher.steps} == DEFAULT_STEP_GRAMMARS
    config = settings.config_dir / "watcher.json"
    data = json.loads(config.read_text())
    del data["steps"]["2"]["grammar"]
    data["steps"]["3"]["grammar"] = "sieve_analysis"
    config.write_text(json.dumps(data))
    edited = load_settings(settings.config_dir, root=tmp_path)
    assert grammar_for_step(edited, "2") == "sieve_analysis"  # not named in the config: the table's default
    assert grammar_for_step(edited, "3") == "sieve_analysis"  # named: the config's
    with pytest.raises(ConfigError, match=r"steps\.9: no such step"):
        grammar_for_step(edited, "9")


# ---------------------------------------------------------------------------------------------------------------
# watcher grammars check
# ---------------------------------------------------------------------------------------------------------------


def test_grammars_check_prints_a_table_and_exits_zero(capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["--config-dir", str(SOURCE_ROOT / "config"), "grammars", "check"])
    out = capsys.readouterr().out
    assert code == 0
    assert "compiled with: llguidance" in out
    for name in GRAMMAR_FILES:
        assert f"grammar {name}" in out
    assert "step 2" in out and "-> sieve_analysis" in out


def test_grammars_check_fails_on_a_broken_grammar_and_names_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "agent_grammars"
    shutil.copytree(SOURCE_ROOT / "agent_grammars", folder)
    (folder / "sieve_analysis.gbnf").write_text('root ::= "{" ws "}"\nws ::= [ ]*\n')
    (folder / "chapter_13.gbnf").unlink()
    monkeypatch.setattr(grammars, "grammar_dir", lambda: folder)
    code = cli.main(["--config-dir", str(SOURCE_ROOT / "config"), "grammars", "check"])
    captured = capsys.readouterr()
    assert code == 1
    assert "sieve_analysis" in captured.err and "unbounded-whitespace" in captured.err
    assert "chapter_13" in captured.err and "cannot read" in captured.err
    assert "step 1" in captured.out and "FAIL" not in _row(captured.out, "step 1")


def _row(table: str, subject: str) -> str:
    return next(line for line in table.splitlines() if line.startswith(subject))


def test_grammars_check_fails_for_a_step_whose_grammar_has_no_decision(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = trust_settings(tmp_path)
    config = settings.config_dir / "watcher.json"
    config.write_text(config.read_text().replace('"grammar": "sieve_analysis"', '"grammar": "parameter_adjustment"'))
    code = cli.main(["--config-dir", str(settings.config_dir), "grammars", "check"])
    assert code == 1
    assert "step 2: grammar 'parameter_adjustment' has no decision field" in capsys.readouterr().err


@pytest.mark.parametrize("name", sorted(decision_schemas()))
def test_answer_and_record_schemas_on_disk_are_generated_from_the_models(name: str) -> None:
    on_disk = (SOURCE_ROOT / "schemas" / name).read_text(encoding="utf-8")
    assert on_disk == render(decision_schemas()[name]), f"schemas/{name} drifted: python -m watcher.commands.schemagen"


def test_without_llguidance_the_check_says_not_checked_when_no_server_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = trust_settings(tmp_path)
    llm_file = settings.config_dir / "llm_server_config.json"
    data = json.loads(llm_file.read_text())
    data["servers"]["primary"]["port"] = free_port()  # nothing listens there
    llm_file.write_text(json.dumps(data))
    monkeypatch.setitem(sys.modules, "llguidance", None)  # import llguidance now raises ImportError
    code = cli.main(["--config-dir", str(settings.config_dir), "grammars", "check"])
    out = capsys.readouterr().out
    assert code == 0
    assert "compiled with: nothing: llguidance is not installed" in out
    assert "not checked" in _row(out, "grammar agent_decision")


def test_a_running_server_can_be_the_compiler() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        grammar = json.loads(request.content)["grammar"]
        if "undefined" in grammar:
            return httpx.Response(400, json={"error": {"message": "failed to parse grammar"}})
        return httpx.Response(200, json={"content": "", "stop_type": "limit", "tokens_predicted": 1})

    client = LlamaClient("http://llm.test", "primary", transport=httpx.MockTransport(handler))
    assert check_grammar("agent_decision", client.grammar_compiles).ok is True
    broken = check_grammar("agent_decision", lambda text: client.grammar_compiles(text + "\nx ::= undefined"))
    assert broken.ok is False and "rejected the grammar" in broken.detail

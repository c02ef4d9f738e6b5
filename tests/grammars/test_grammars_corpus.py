"""The golden corpus: for each grammar, answers it must accept, reject, or reject although the schema accepts.

``tests/grammar_corpus/<grammar>/accept``: the grammar accepts and the answer validates (JSON, schema, model).
``.../reject``: the grammar rejects and validation fails too (confidence 1.5 and -0.1, bad enum values, extra or
missing keys, trailing text, truncation). ``.../grammar_only``: the grammar is stricter than the schema (more
than three decimals of confidence, keys out of order, runs of whitespace): it rejects what validation accepts.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from pathlib import Path

import pytest

from watcher.errors import AnswerInvalid
from watcher.grammars.loader import GRAMMAR_FILES, llguidance_matcher, load_grammar
from watcher.judging.answers import validate_answer

CORPUS = Path(__file__).parent / "grammar_corpus"
CASES = sorted(CORPUS.glob("*/*/*.json"))

pytestmark = pytest.mark.timeout(60)


@cache
def accepts(grammar: str) -> Callable[[str], bool]:
    return llguidance_matcher(load_grammar(grammar).text)


def case_id(path: Path) -> str:
    return str(path.relative_to(CORPUS))


def validates(grammar: str, text: str) -> bool:
    try:
        validate_answer(grammar, text)
    except AnswerInvalid:
        return False
    return True


def test_corpus_covers_every_grammar_and_kind() -> None:
    for grammar in GRAMMAR_FILES:
        for kind in ("accept", "reject", "grammar_only"):
            assert list((CORPUS / grammar / kind).glob("*.json")), f"no {kind} cases for {grammar}"


@pytest.mark.parametrize("path", CASES, ids=case_id)
def test_corpus_case(path: Path) -> None:
    grammar, kind = path.parent.parent.name, path.parent.name
    text = path.read_text(encoding="utf-8")
    expected = {"accept": (True, True), "reject": (False, False), "grammar_only": (False, True)}[kind]
    assert (accepts(grammar)(text), validates(grammar, text)) == expected


@pytest.mark.parametrize("grammar", sorted(set(GRAMMAR_FILES) - {"json_generic"}))
def test_rejections_include_the_required_kinds(grammar: str) -> None:
    names = {path.stem for path in (CORPUS / grammar / "reject").glob("*.json")}
    required = {"confidence_1_5", "confidence_negative", "extra_key", "trailing_text", "truncated"}
    assert required <= names
    assert any(name.startswith("missing_") for name in names)
    assert any(name.startswith("bad_") for name in names)

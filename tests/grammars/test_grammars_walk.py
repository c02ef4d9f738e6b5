"""Grammars and schemas agree, both ways.

* Walking a grammar at random (seeded, depth-bounded) gives strings that all validate against the grammar's
  JSON Schema and model: the grammar never lets the model write an answer the evaluator would refuse.
* Sampling the schema at random gives answers that the grammar accepts, compact, spaced or indented: the
  grammar does not forbid what the schema allows, within the grammar's documented subset (confidence with at
  most three decimals, keys in model order, no ``\\u`` escapes outside json_generic).
"""

from __future__ import annotations

import json
import random
import string
from collections.abc import Callable
from functools import cache
from typing import Any

import pytest

from watcher.grammars.gbnf import Alt, CharClass, Grammar, Literal, Node, Ref, Repeat, Seq, parse
from watcher.grammars.loader import GRAMMAR_FILES, llguidance_matcher, load_grammar
from watcher.judging.answers import GRAMMAR_MODELS, validate_answer

SAMPLES = 150
MAX_DEPTH = 60
SOFT_SIZE = 3000  # past this many characters, repetitions take their minimum so json_generic stays small
# Characters tried for negated classes: ASCII, escapes' targets, control and non-ASCII characters.
CHAR_POOL = string.printable + "\x00\x07\x1f\x7féß漢字😀"

pytestmark = pytest.mark.timeout(120)


@cache
def accepts(grammar: str) -> Callable[[str], bool]:
    return llguidance_matcher(load_grammar(grammar).text)


# ---------------------------------------------------------------------------------------------------------------
# Grammar -> strings
# ---------------------------------------------------------------------------------------------------------------


class Walker:
    """Random derivations of a GBNF grammar; repetitions favour their bounds, where mistakes hide."""

    def __init__(self, grammar: Grammar, rng: random.Random) -> None:
        self.grammar = grammar
        self.rng = rng

    def sample(self) -> str:
        out: list[str] = []
        self.size = 0
        self.walk(self.grammar.rules["root"], out, 0)
        return "".join(out)

    def walk(self, node: Node, out: list[str], depth: int) -> None:
        if depth > MAX_DEPTH:
            raise RecursionError("grammar nests deeper than the walker's bound")
        if isinstance(node, Literal):
            out.append(node.text)
            self.size += len(node.text)
        elif isinstance(node, CharClass):
            out.append(self.char(node))
            self.size += 1
        elif isinstance(node, Ref):
            self.walk(self.grammar.rules[node.name], out, depth + 1)
        elif isinstance(node, Seq):
            for item in node.items:
                self.walk(item, out, depth + 1)
        elif isinstance(node, Alt):
            self.walk(self.rng.choice(node.options), out, depth + 1)
        else:
            for _ in range(self.count(node)):
                self.walk(node.item, out, depth + 1)

    def count(self, node: Repeat) -> int:
        high = node.high if node.high is not None else node.low + 4
        if self.size > SOFT_SIZE:
            return node.low
        roll = self.rng.random()
        if roll < 0.15:
            return high
        if roll < 0.3:
            return node.low
        return self.rng.randint(node.low, min(high, node.low + 12))

    def char(self, node: CharClass) -> str:
        if node.negated:
            return self.rng.choice([c for c in CHAR_POOL if node.allows(c)])
        low, high = self.rng.choice(node.ranges)
        return chr(self.rng.randint(low, high))


@pytest.mark.parametrize("grammar", sorted(GRAMMAR_FILES))
def test_every_string_the_grammar_generates_validates(grammar: str) -> None:
    walker = Walker(parse(load_grammar(grammar).text), random.Random(f"walk-{grammar}"))
    for _ in range(SAMPLES):
        text = walker.sample()
        assert accepts(grammar)(text), f"the walker left the grammar: {text!r}"
        validate_answer(grammar, text)  # raises AnswerInvalid, naming the stage, if the grammar is too loose


def test_the_walker_reaches_the_bounds() -> None:
    walker = Walker(parse(load_grammar("agent_decision").text), random.Random("bounds"))
    answers = [json.loads(walker.sample()) for _ in range(SAMPLES)]
    assert max(len(a["reasoning"]) for a in answers) == 400
    assert max(len(a["warnings"]) for a in answers) == 3
    assert {a["decision"] for a in answers} == {"proceed", "retry", "escalate"}
    assert {0, 1} <= {a["confidence"] for a in answers}


# ---------------------------------------------------------------------------------------------------------------
# Schema -> answers
# ---------------------------------------------------------------------------------------------------------------

TEXT = string.ascii_letters + string.digits + ' .,;:!?-_()"\\/\n\téß漢'
NAME_HEAD = string.ascii_letters + "_"
NAME_TAIL = NAME_HEAD + string.digits + "."


class SchemaSampler:
    """Random instances of a pydantic-generated JSON Schema (properties in model order)."""

    def __init__(self, schema: dict[str, Any], rng: random.Random) -> None:
        self.defs = schema.get("$defs", {})
        self.schema = schema
        self.rng = rng

    def sample(self, node: dict[str, Any] | None = None, depth: int = 0) -> Any:
        node = self.schema if node is None else node
        if "$ref" in node:
            return self.sample(self.defs[node["$ref"].split("/")[-1]], depth)
        for key in ("anyOf", "oneOf"):
            if key in node:
                return self.sample(self.rng.choice(node[key]), depth)
        if "const" in node:
            return node["const"]
        if "enum" in node:
            return self.rng.choice(node["enum"])
        kind = node.get("type")
        if kind is None:
            return self.any_json(depth)
        return getattr(self, f"sample_{kind}")(node, depth)

    def sample_object(self, node: dict[str, Any], depth: int) -> dict[str, Any]:
        return {key: self.sample(value, depth + 1) for key, value in node["properties"].items()}

    def sample_array(self, node: dict[str, Any], depth: int) -> list[Any]:
        size = self.rng.randint(node.get("minItems", 0), node.get("maxItems", 5))
        return [self.sample(node["items"], depth + 1) for _ in range(size)]

    def sample_string(self, node: dict[str, Any], depth: int) -> str:
        if "pattern" in node:  # the parameter-name pattern is the only one in the answer schemas
            tail = "".join(self.rng.choice(NAME_TAIL) for _ in range(self.rng.randint(0, 63)))
            return self.rng.choice(NAME_HEAD) + tail
        size = self.rng.randint(node.get("minLength", 0), node.get("maxLength", 50))
        return "".join(self.rng.choice(TEXT) for _ in range(size))

    def sample_number(self, node: dict[str, Any], depth: int) -> float:
        return round(self.rng.uniform(node.get("minimum", -1e6), node.get("maximum", 1e6)), 3)

    def sample_integer(self, node: dict[str, Any], depth: int) -> int:
        return self.rng.randint(node.get("minimum", -(10**12)), node.get("maximum", 10**12))

    def sample_boolean(self, node: dict[str, Any], depth: int) -> bool:
        return self.rng.random() < 0.5

    def sample_null(self, node: dict[str, Any], depth: int) -> None:
        return None

    def any_json(self, depth: int) -> Any:
        """A JSON value within json_generic's bounds (four levels of containers, 32 items each)."""
        roll = self.rng.random()
        if depth >= 4 or roll < 0.4:
            return self.rng.choice([None, True, 1.5, -20, "text", 'é\\"\n'])
        size = self.rng.randint(0, 32 if roll > 0.9 else 4)
        if roll < 0.7:
            return [self.any_json(depth + 1) for _ in range(size)]
        return {f"k{i}": self.any_json(depth + 1) for i in range(size)}


@pytest.mark.parametrize("grammar", sorted(GRAMMAR_FILES))
def test_schema_valid_answers_are_accepted_by_the_grammar(grammar: str) -> None:
    sampler = SchemaSampler(GRAMMAR_MODELS[grammar].model_json_schema(), random.Random(f"schema-{grammar}"))
    for _ in range(SAMPLES):
        answer = sampler.sample()
        for text in (
            json.dumps(answer, ensure_ascii=False),
            json.dumps(answer, ensure_ascii=False, separators=(",", ":")),
            json.dumps(answer, ensure_ascii=False, indent=2),
        ):
            validate_answer(grammar, text)  # the sampler's answers are schema-valid by construction
            assert accepts(grammar)(text), f"{grammar} rejects a schema-valid answer: {text!r}"

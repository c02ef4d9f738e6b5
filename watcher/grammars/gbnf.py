"""A reader for llama.cpp GBNF grammars, and a lint for what makes a grammar unsafe for a small model.

Only the lint and the tests need the syntax tree; llama-server parses the grammar text itself. The reader
covers what llama.cpp documents in ``grammars/README.md``: rules ``name ::= ...``, ``#`` comments, literals,
character classes (``^`` negation, ranges, ``\\x``/``\\u``/``\\U`` escapes), ``.``, groups, alternatives and
``* + ? {m} {m,} {m,n}``. Token references (``<[id]>``) are not used by watcher's grammars and not read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from watcher.errors import GrammarError

RULE_NAME_RE = re.compile(r"^[a-z]+(-[a-z]+)*$")
_NAME = re.compile(r"[A-Za-z0-9_-]+")
_DEFINE = re.compile(r"([A-Za-z0-9_-]+)\s*::=")
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "\\": "\\", '"': '"', "[": "[", "]": "]", "-": "-", "/": "/"}
_HEX_WIDTH = {"x": 2, "u": 4, "U": 8}


@dataclass(frozen=True)
class Literal:
    text: str


@dataclass(frozen=True)
class CharClass:
    ranges: tuple[tuple[int, int], ...]
    negated: bool = False

    def allows(self, char: str) -> bool:
        inside = any(low <= ord(char) <= high for low, high in self.ranges)
        return inside != self.negated


@dataclass(frozen=True)
class Ref:
    name: str


@dataclass(frozen=True)
class Seq:
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Alt:
    options: tuple[Node, ...]


@dataclass(frozen=True)
class Repeat:
    item: Node
    low: int
    high: int | None  # None: unbounded


Node = Literal | CharClass | Ref | Seq | Alt | Repeat
ANY_CHAR = CharClass(((0x0A, 0x0A),), negated=True)  # `.`: any character but a newline


@dataclass
class Grammar:
    rules: dict[str, Node] = field(default_factory=dict)


class _Reader:
    """Recursive descent over the text; ``pos`` is the read position."""

    def __init__(self, text: str, source: str) -> None:
        self.text = text
        self.source = source
        self.pos = 0

    def fail(self, message: str) -> GrammarError:
        line = self.text.count("\n", 0, self.pos) + 1
        return GrammarError(f"{self.source}: line {line}: {message}")

    def skip(self, newlines: bool) -> None:
        while self.pos < len(self.text):
            char = self.text[self.pos]
            if char == "#":
                end = self.text.find("\n", self.pos)
                self.pos = len(self.text) if end < 0 else end
            elif char in " \t\r" or (newlines and char == "\n"):
                self.pos += 1
            else:
                return

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def at_rule_start(self) -> bool:
        return _DEFINE.match(self.text, self.pos) is not None

    def grammar(self) -> Grammar:
        grammar = Grammar()
        self.skip(newlines=True)
        while self.pos < len(self.text):
            match = _DEFINE.match(self.text, self.pos)
            if match is None:
                raise self.fail("expected `name ::=`")
            name = match.group(1)
            if name in grammar.rules:
                raise self.fail(f"rule {name!r} defined twice")
            self.pos = match.end()
            self.skip(newlines=True)  # the body may start on the next line
            grammar.rules[name] = self.alternatives(nested=False)
            self.skip(newlines=True)
        return grammar

    def alternatives(self, nested: bool) -> Node:
        options = [self.sequence(nested)]
        while self.peek() == "|":
            self.pos += 1
            self.skip(newlines=True)  # a newline after `|` continues the rule
            options.append(self.sequence(nested))
        return options[0] if len(options) == 1 else Alt(tuple(options))

    def sequence(self, nested: bool) -> Node:
        items: list[Node] = []
        while True:
            self.skip(newlines=nested)
            char = self.peek()
            if char in ("", "|", ")", "\n") or (not nested and self.at_rule_start()):
                return items[0] if len(items) == 1 else Seq(tuple(items))
            items.append(self.postfix(self.primary()))

    def primary(self) -> Node:
        char = self.peek()
        if char == '"':
            return self.literal()
        if char == "[":
            return self.char_class()
        if char == ".":
            self.pos += 1
            return ANY_CHAR
        if char == "(":
            self.pos += 1
            inner = self.alternatives(nested=True)
            self.skip(newlines=True)
            if self.peek() != ")":
                raise self.fail("expected `)`")
            self.pos += 1
            return inner
        match = _NAME.match(self.text, self.pos)
        if match is None:
            raise self.fail(f"unexpected {char!r}")
        self.pos = match.end()
        return Ref(match.group(0))

    def postfix(self, node: Node) -> Node:
        while True:
            char = self.peek()
            if char and char in "*+?":
                self.pos += 1
                low, high = {"*": (0, None), "+": (1, None), "?": (0, 1)}[char]
                node = Repeat(node, low, high)
            elif char == "{":
                node = self.braces(node)
            else:
                return node

    def braces(self, node: Node) -> Node:
        match = re.compile(r"\{\s*(\d+)\s*(,\s*(\d*)\s*)?\}").match(self.text, self.pos)
        if match is None:
            raise self.fail("bad repetition `{...}`")
        self.pos = match.end()
        low = int(match.group(1))
        if match.group(2) is None:
            return Repeat(node, low, low)
        high = int(match.group(3)) if match.group(3) else None
        if high is not None and high < low:
            raise self.fail(f"repetition {{{low},{high}}}: max below min")
        return Repeat(node, low, high)

    def char(self) -> str:
        char = self.peek()
        if char == "":
            raise self.fail("unexpected end of grammar")
        self.pos += 1
        if char != "\\":
            return char
        code = self.peek()
        self.pos += 1
        if code in _HEX_WIDTH:
            digits = self.text[self.pos : self.pos + _HEX_WIDTH[code]]
            if not re.fullmatch(r"[0-9a-fA-F]+", digits) or len(digits) != _HEX_WIDTH[code]:
                raise self.fail(f"bad escape \\{code}{digits}")
            self.pos += len(digits)
            return chr(int(digits, 16))
        if code not in _ESCAPES:
            raise self.fail(f"unknown escape \\{code}")
        return _ESCAPES[code]

    def literal(self) -> Literal:
        self.pos += 1
        out = []
        while self.peek() != '"':
            out.append(self.char())
        self.pos += 1
        return Literal("".join(out))

    def char_class(self) -> CharClass:
        self.pos += 1
        negated = self.peek() == "^"
        self.pos += negated
        ranges: list[tuple[int, int]] = []
        while self.peek() != "]":
            low = self.char()
            high = low
            if self.peek() == "-" and self.text[self.pos + 1 : self.pos + 2] != "]":
                self.pos += 1
                high = self.char()
            ranges.append((ord(low), ord(high)))
        self.pos += 1
        return CharClass(tuple(ranges), negated)


def parse(text: str, source: str = "<grammar>") -> Grammar:
    """The syntax tree of a GBNF grammar; GrammarError names the source and line of a syntax error."""
    return _Reader(text, source).grammar()

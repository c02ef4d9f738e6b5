"""A lint for GBNF grammars: what makes a grammar unsafe for a small model, or one llama.cpp rejects."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from watcher.grammars.gbnf import RULE_NAME_RE, Alt, CharClass, Grammar, Literal, Node, Ref, Repeat, Seq

WHITESPACE = frozenset(" \t\r\n")


@dataclass(frozen=True)
class LintIssue:
    rule: str
    kind: str  # bad-rule-name, no-root, undefined-rule, unused-rule, unbounded-whitespace, ...
    message: str

    def __str__(self) -> str:
        return f"{self.rule}: {self.kind}: {self.message}"


def lint(grammar: Grammar) -> list[LintIssue]:
    """What makes a grammar unsafe for a small model: unbounded repetition (whitespace above all, which lets a
    model emit blanks until the token limit), recursion (unbounded nesting), left recursion (llama.cpp rejects
    it), and rule names llama.cpp does not document (lowercase words joined by dashes)."""
    issues = _names(grammar)
    if any(issue.kind == "undefined-rule" for issue in issues):
        return issues
    issues += _unbounded(grammar)
    left = _left_recursive(grammar)
    issues += [LintIssue(name, "left-recursion", "the rule can start with itself") for name in sorted(left)]
    issues += [
        LintIssue(name, "recursion", "the rule contains itself: nesting depth is unbounded")
        for name in sorted(_recursive(grammar, _refs) - left)
    ]
    return issues


def children(node: Node) -> tuple[Node, ...]:
    if isinstance(node, Seq):
        return node.items
    if isinstance(node, Alt):
        return node.options
    if isinstance(node, Repeat):
        return (node.item,)
    return ()


def walk(node: Node) -> list[Node]:
    out = [node]
    for child in children(node):
        out += walk(child)
    return out


def _refs(node: Node, grammar: Grammar) -> set[str]:
    return {item.name for item in walk(node) if isinstance(item, Ref)}


def _names(grammar: Grammar) -> list[LintIssue]:
    issues = [
        LintIssue(name, "bad-rule-name", "use lowercase letters and dashes")
        for name in grammar.rules
        if not RULE_NAME_RE.match(name)
    ]
    if "root" not in grammar.rules:
        issues.append(LintIssue("root", "no-root", "a grammar starts at a rule named root"))
    used: set[str] = set()
    for name, body in grammar.rules.items():
        for ref in sorted(_refs(body, grammar)):
            used.add(ref)
            if ref not in grammar.rules:
                issues.append(LintIssue(name, "undefined-rule", f"refers to {ref!r}, which is not defined"))
    issues += [
        LintIssue(name, "unused-rule", "not reachable from root")
        for name in grammar.rules
        if name != "root" and name not in used
    ]
    return issues


def _unbounded(grammar: Grammar) -> list[LintIssue]:
    issues = []
    for name, body in grammar.rules.items():
        for node in walk(body):
            if isinstance(node, Repeat) and node.high is None:
                if _only_whitespace(node.item, grammar, frozenset()):
                    issues.append(LintIssue(name, "unbounded-whitespace", "bound it, e.g. [ ]{0,8}"))
                else:
                    issues.append(LintIssue(name, "unbounded-repetition", "give `*`, `+` or `{m,}` a maximum"))
    return issues


def _only_whitespace(node: Node, grammar: Grammar, seen: frozenset[str]) -> bool:
    if isinstance(node, Literal):
        return set(node.text) <= WHITESPACE
    if isinstance(node, CharClass):
        return not node.negated and all(
            chr(code) in WHITESPACE for low, high in node.ranges for code in range(low, min(high, 0x7F) + 1)
        )
    if isinstance(node, Ref):
        return node.name not in seen and _only_whitespace(grammar.rules[node.name], grammar, seen | {node.name})
    return all(_only_whitespace(child, grammar, seen) for child in children(node))


def _nullable_rules(grammar: Grammar) -> set[str]:
    nullable: set[str] = set()
    changed = True
    while changed:
        changed = False
        for name, body in grammar.rules.items():
            if name not in nullable and _nullable(body, nullable):
                nullable.add(name)
                changed = True
    return nullable


def _nullable(node: Node, nullable: set[str]) -> bool:
    if isinstance(node, Literal):
        return node.text == ""
    if isinstance(node, CharClass):
        return False
    if isinstance(node, Ref):
        return node.name in nullable
    if isinstance(node, Seq):
        return all(_nullable(item, nullable) for item in node.items)
    if isinstance(node, Alt):
        return any(_nullable(option, nullable) for option in node.options)
    return node.low == 0 or _nullable(node.item, nullable)


def _leftmost(node: Node, nullable: set[str]) -> set[str]:
    """Rules that can be expanded at the very start of what ``node`` matches."""
    if isinstance(node, Ref):
        return {node.name}
    if isinstance(node, Seq):
        out: set[str] = set()
        for item in node.items:
            out |= _leftmost(item, nullable)
            if not _nullable(item, nullable):
                break
        return out
    return set().union(*(_leftmost(child, nullable) for child in children(node)))


def _left_recursive(grammar: Grammar) -> set[str]:
    nullable = _nullable_rules(grammar)
    return _recursive(grammar, lambda body, _: _leftmost(body, nullable))


def _recursive(grammar: Grammar, edges: Callable[[Node, Grammar], set[str]]) -> set[str]:
    """Rules that reach themselves along ``edges``."""
    graph = {name: edges(body, grammar) & set(grammar.rules) for name, body in grammar.rules.items()}
    found = set()
    for start, targets in graph.items():
        stack, seen = list(targets), set()
        while stack:
            name = stack.pop()
            if name == start:
                found.add(start)
                break
            if name not in seen:
                seen.add(name)
                stack.extend(graph[name])
    return found

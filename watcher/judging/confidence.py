"""The decision's confidence from the model's own token probabilities, not from the number it writes.

A small model's written confidence is a copied habit (0.89-0.92 whatever it decides); the probability it gave the
decision word when it chose it is not. At the token where the decision's value starts, the server's top
alternatives (``n_probs``, probabilities before the grammar) are grouped by the decision each would begin - the
three names start with different letters, so the first letter after the opening quote names it - and the chosen
decision's share of that mass is the confidence: the model's own odds among the answers the grammar allows.
"""

from __future__ import annotations

import re

from watcher.judging.turns import THINK_CLOSE, answer_text
from watcher.judging.verdicts import DECISIONS
from watcher.llm.client import TokenProbs

# Enough alternatives to see all three decisions at the decision token, few enough to keep the answer small.
N_PROBS = 10
_DECISION_VALUE = re.compile(r'"decision"\s*:\s*"')


def decision_confidence(content: str, probs: tuple[TokenProbs, ...], decision: str) -> float | None:
    """The chosen decision's share of the probability mass of the three decisions at the token that starts it;
    None when the server sent no probabilities or the tokens do not spell ``content``."""
    start = decision_offset(content)
    if start is None or not probs:
        return None
    found = _covering_token(probs, start)
    if found is None:
        return None
    token, lead = found
    mass: dict[str, float] = dict.fromkeys(DECISIONS, 0.0)
    for text, probability in token.top:
        named = _decision_named(text, lead)
        if named is not None:
            mass[named] += probability
    total = sum(mass.values())
    if total <= 0 or decision not in mass:
        return None
    return round(mass[decision] / total, 4)


def decision_offset(content: str) -> int | None:
    """Where the decision's value (after its opening quote) starts in the answer text, thinking section included."""
    start = content.index(THINK_CLOSE) + len(THINK_CLOSE) if answer_text(content) != content else 0
    match = _DECISION_VALUE.search(content, start)
    return match.end() if match else None


def _covering_token(probs: tuple[TokenProbs, ...], offset: int) -> tuple[TokenProbs, str] | None:
    """The generated token holding the character at ``offset`` and its text before that character."""
    position = 0
    for token in probs:
        end = position + len(token.token)
        if position <= offset < end:
            return token, token.token[: offset - position]
        position = end
    return None


def _decision_named(text: str, lead: str) -> str | None:
    """The decision an alternative token would begin, given the text the chosen token had before the value."""
    if not text.startswith(lead) or len(text) == len(lead):
        return None
    rest = text[len(lead) :]
    for decision in DECISIONS:
        if decision.startswith(rest) or rest.startswith(decision):
            return decision
    return None

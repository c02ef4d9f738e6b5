"""The GBNF grammars that constrain the model's answers: names, files, which step uses which, and checks.

Grammar files live in ``agent_grammars/`` (found through :mod:`watcher.resources`, so any working directory
and an installed package both work). Loading is cached per file version: an edited grammar is read again.
Compiling a grammar without a model uses llguidance, a test and development dependency; without it,
``watcher grammars check`` asks a running llama-server, or reports the grammar as not checked.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from watcher.config import Settings
from watcher.core.datadirs import grammar_dir
from watcher.errors import ConfigError, GrammarError

# Grammar name -> file in agent_grammars/.
GRAMMAR_FILES: dict[str, str] = {
    "agent_decision": "agent_decision.gbnf",
    "sieve_analysis": "sieve_analysis.gbnf",
    "parameter_adjustment": "parameter_adjustment.gbnf",
    "json_generic": "json_generic.gbnf",
    "chapter_13": "chapter_13.gbnf",
    "chapter_13_proposal": "chapter_13_proposal.gbnf",
}

# The grammar of a step whose config does not name one: the sieve (step 2) has its own.
DEFAULT_STEP_GRAMMARS: dict[str, str] = {
    "1": "agent_decision",
    "2": "sieve_analysis",
    "2.5": "agent_decision",
    "3": "agent_decision",
    "4": "agent_decision",
    "5": "agent_decision",
    "6": "agent_decision",
}
FALLBACK_GRAMMAR = "json_generic"


@dataclass(frozen=True)
class LoadedGrammar:
    name: str
    path: Path
    text: str
    sha256: str


_cache: dict[str, tuple[tuple[int, int], LoadedGrammar]] = {}
_cache_lock = threading.Lock()


def grammar_path(name: str) -> Path:
    try:
        return grammar_dir() / GRAMMAR_FILES[name]
    except KeyError:
        raise GrammarError(f"unknown grammar {name!r}; known: {', '.join(GRAMMAR_FILES)}") from None


def load_grammar(name: str) -> LoadedGrammar:
    """The grammar's text and sha256; read again only when the file's size or mtime changed."""
    path = grammar_path(name)
    try:
        stat = path.stat()
        version = (stat.st_mtime_ns, stat.st_size)
        with _cache_lock:
            cached = _cache.get(name)
            if cached is not None and cached[0] == version and cached[1].path == path:
                return cached[1]
        data = path.read_bytes()
    except OSError as exc:
        raise GrammarError(f"{path}: cannot read grammar {name!r}: {exc.strerror or exc}") from exc
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise GrammarError(f"{path}: grammar {name!r} is not UTF-8: {exc}") from exc
    loaded = LoadedGrammar(name, path, text, hashlib.sha256(data).hexdigest())
    with _cache_lock:
        _cache[name] = (version, loaded)
    return loaded


def object_fallback_grammar() -> LoadedGrammar:
    """``json_generic`` with an object at the root: the last grammar tried before an unconstrained call."""
    base = load_grammar(FALLBACK_GRAMMAR)
    text = base.text.replace("root ::= value-a", "root ::= object-a", 1)
    if text == base.text:
        raise GrammarError(f"{base.path}: expected the rule `root ::= value-a`")
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return LoadedGrammar(f"{FALLBACK_GRAMMAR}:object", base.path, text, digest)


def grammar_for_step(settings: Settings, step: str) -> str:
    """The grammar name a step is judged with: the config's, else the step's default."""
    config = settings.watcher.steps.get(step)
    if config is None:
        known = ", ".join(sorted(settings.watcher.steps))
        raise ConfigError(settings.config_dir / "watcher.json", f"steps.{step}", f"no such step; steps: {known}")
    if "grammar" in config.model_fields_set:
        return config.grammar
    return DEFAULT_STEP_GRAMMARS.get(step, config.grammar)


# ---------------------------------------------------------------------------------------------------------------
# Compiling without a model (llguidance)
# ---------------------------------------------------------------------------------------------------------------


class _ByteTokenizer:
    """One token per byte plus an end token: enough for llguidance to match text without a model."""

    eos_token_id: ClassVar[int] = 256
    bos_token_id: ClassVar[int | None] = None
    tokens: ClassVar[list[bytes]] = [bytes([value]) for value in range(256)] + [b"</s>"]
    special_token_ids: ClassVar[list[int]] = [256]

    def __call__(self, data: bytes) -> list[int]:
        return list(data)


def _llguidance_grammar(text: str) -> tuple[object, str]:
    """The llguidance tokenizer and the grammar compiled from GBNF; ImportError when llguidance is absent."""
    import llguidance

    tokenizer = llguidance.LLTokenizer(llguidance.TokenizerWrapper(_ByteTokenizer()))
    try:
        compiled = llguidance.grammar_from("gbnf", text)
    except ValueError as exc:
        raise GrammarError(str(exc)) from exc
    is_error, messages = llguidance.LLMatcher.validate_grammar_with_warnings(compiled, tokenizer)
    if is_error:
        raise GrammarError("; ".join(messages))
    return tokenizer, compiled


def llguidance_compile(text: str) -> None:
    """Raise GrammarError if llguidance cannot compile the GBNF text (ImportError if it is not installed)."""
    _llguidance_grammar(text)


def llguidance_matcher(text: str) -> Callable[[str], bool]:
    """A function telling whether a whole string is accepted by the grammar (needs llguidance)."""
    import llguidance

    tokenizer, compiled = _llguidance_grammar(text)

    def accepts(candidate: str) -> bool:
        matcher = llguidance.LLMatcher(tokenizer, compiled, log_level=0)  # type: ignore[arg-type]
        consumed = matcher.consume_tokens(list(candidate.encode("utf-8")))
        return bool(consumed and not matcher.is_error() and matcher.is_accepting())

    return accepts

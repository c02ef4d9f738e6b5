"""The model's own turns: chat messages become a prompt through the server's ``/apply-template``.

Every model gets the turn markers its chat template defines (Gemma, ChatML, DeepSeek-R1, ...) instead of
hand-written ones. A model whose GGUF has no template gets llama-server's fallback (ChatML), and the decision
record says so (``template_source``). Reasoning models: thinking ``off`` asks the template for no thinking
(``enable_thinking=false``; the grammar then starts the answer at its ``{``), ``bounded`` lets the model write a
``<think>`` section of at most ``think_max_chars`` before the grammar-constrained JSON (:func:`with_thinking`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from watcher.config import ServerConfig, Settings
from watcher.errors import InputError
from watcher.judging.records import TemplateSource
from watcher.llm.client import LlamaClient, ServerProps
from watcher.llm.gguf_header import read_metadata
from watcher.llm.models import catalogue_template

Thinking = Literal["off", "bounded"]
THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"
# llama-server's fallback template when the model has none (the ChatML turns it reports in /props).
_FALLBACK_MARK = "'<|im_start|>' + message.role"


@dataclass(frozen=True)
class Turns:
    """How prompts are made for one server: its template (and where it came from) and its thinking mode."""

    client: LlamaClient
    template_source: TemplateSource
    thinking: Thinking = "off"
    think_max_chars: int = 1200

    def prompt(self, messages: list[dict[str, str]]) -> str:
        return self.client.apply_template(messages, {"enable_thinking": self.thinking == "bounded"})


def turns_for(client: LlamaClient, settings: Settings, props: ServerProps, model_path: str | None) -> Turns:
    """The turns of the server behind ``client`` (configured under ``client.name``, when it is)."""
    server = settings.llm.servers.get(client.name)
    source = template_source(server, props, model_path)
    if server is None:
        return Turns(client, source)
    return Turns(client, source, server.thinking, server.think_max_chars)


def template_source(server: ServerConfig | None, props: ServerProps, model_path: str | None) -> TemplateSource:
    """Whose template the running server uses: its ``/props`` show the fallback's ChatML when the model has none
    and nothing named one; otherwise the config (or the catalogue) named it, or the model brought its own."""
    try:
        own = bool(model_path) and "tokenizer.chat_template" in read_metadata(Path(str(model_path)))
    except InputError:
        own = None
    if own is False and (_FALLBACK_MARK in props.chat_template or not props.chat_template):
        return "server_fallback"
    if server is not None and (server.chat_template or server.chat_template_file or _template_flag(server)):
        return "config"
    if own is False or (model_path and catalogue_template(Path(model_path))):
        return "config"  # named on the command line: by the catalogue (watcher.llm.command) or by hand
    return "model" if own else "unknown"


def _template_flag(server: ServerConfig) -> bool:
    return any(arg.startswith("--chat-template") for arg in server.extra_args)


_ROOT = re.compile(r"^root(\s*::=)", re.MULTILINE)


def with_thinking(grammar: str, max_chars: int, *, opened: bool) -> str:
    """``grammar`` preceded by a bounded thinking section: ``<think>`` (unless the prompt already opened it), at
    most ``max_chars`` characters without ``<``, ``</think>``, then the original root."""
    if not _ROOT.search(grammar):
        raise ValueError("the grammar has no root rule")
    body = _ROOT.sub(r"answer-root\1", grammar)
    opening = "" if opened else f'"{THINK_OPEN}" '
    return (
        f'root ::= {opening}think-char{{0,{max_chars}}} "{THINK_CLOSE}" think-ws answer-root\n'
        "think-char ::= [^<]\n"
        'think-ws ::= ("\\n"){0,2}\n' + body
    )


def opened_thinking(prompt: str) -> bool:
    """True when the template itself ends the prompt inside an open ``<think>`` (newer reasoning templates)."""
    return prompt.rstrip().endswith(THINK_OPEN)


def answer_text(content: str) -> str:
    """The answer after a thinking section (the whole text when there is none). The first ``</think>`` ends the
    section: the grammar allows no ``<`` inside it, while the answer's texts may quote the tag."""
    return content.split(THINK_CLOSE, 1)[1].strip() if content.startswith(THINK_OPEN) or _opened(content) else content


def _opened(content: str) -> bool:
    """A section opened by the prompt: the answer starts with the thinking text itself, before a ``</think>``."""
    head = content.split(THINK_CLOSE, 1)[0]
    return THINK_CLOSE in content and "{" not in head

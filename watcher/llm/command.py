"""What to run for a configured server: its command line, its environment, and the KV estimate that goes with it."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loguru import logger

from watcher.config import ServerConfig
from watcher.errors import InputError
from watcher.llm.memory import gpu_count
from watcher.llm.models import catalogue_template

if TYPE_CHECKING:
    from watcher.llm.gguf import ModelFacts


def build_command(server: ServerConfig, binary: Path, model: Path) -> tuple[str, ...]:
    """The llama-server command line. Host, port and context are always explicit: its defaults differ by version."""
    command = [
        str(binary),
        "--host", server.host,
        "--port", str(server.port),
        "--ctx-size", str(server.context_length),
        "--model", str(model),
        "--n-gpu-layers", str(server.gpu_layers),
        "--parallel", str(server.parallel_slots),
        "--cache-type-k", server.cache_type_k,
        "--cache-type-v", server.cache_type_v,
    ]  # fmt: skip
    if server.threads is not None:
        command += ["--threads", str(server.threads)]
    return (*command, *template_args(server, model), *server.extra_args)


def template_args(server: ServerConfig, model: Path | None = None) -> list[str]:
    """The chat template and thinking flags. A built-in template is named with the Jinja engine off: with it on,
    llama-server takes the name itself for a template text. A template file needs the Jinja engine. A model of
    the catalogue without a template of its own (Gemma 3 270M) gets the built-in one it needs unless the config
    names a template."""
    args: list[str] = []
    builtin = server.chat_template
    if builtin is None and server.chat_template_file is None and model is not None:
        builtin = catalogue_template(model)
    if builtin:
        args += ["--no-jinja", "--chat-template", builtin]
    if server.chat_template_file is not None:
        args += ["--jinja", "--chat-template-file", str(server.chat_template_file)]
    if server.thinking == "off":
        args += ["--reasoning-budget", "0"]
    return args


def build_env(server: ServerConfig) -> dict[str, str]:
    env = dict(os.environ)
    if server.gpus:
        env["CUDA_VISIBLE_DEVICES"] = ",".join(str(gpu) for gpu in server.gpus)
    return env


@dataclass(frozen=True)
class KvEstimate:
    bytes_per_gpu: int | None
    n_gpus: int
    facts: ModelFacts | None
    problem: str = ""  # why there is no estimate

    def text(self) -> str:
        if self.bytes_per_gpu is None:
            return "kv_cache_est=unknown"
        return f"kv_cache_est≈{self.bytes_per_gpu / 1e9:.2f}GB/GPU"


def kv_estimate(server: ServerConfig, model: Path) -> KvEstimate:
    """The KV-cache estimate for this server; a model the header reader cannot read gives none (and a reason)."""
    # Imported here: the gguf package loads numpy (~12 MB), which a daemon that never starts a server should not.
    from watcher.llm.gguf import estimate_kv_cache_bytes, read_model_facts

    n_gpus = len(server.gpus) or gpu_count() or 1
    try:
        facts = read_model_facts(model)
    except InputError as exc:
        logger.warning("no KV-cache estimate: {}", exc)
        return KvEstimate(None, n_gpus, None, str(exc))
    unified, swa_full, n_ubatch = _cache_options(server.extra_args)
    ubatch: dict[str, Any] = {"n_ubatch": n_ubatch} if n_ubatch is not None else {}
    try:
        size = estimate_kv_cache_bytes(
            facts, server.context_length, server.parallel_slots, server.cache_type_k, server.cache_type_v,
            n_gpus=n_gpus, unified=unified, swa_full=swa_full, **ubatch,
        )  # fmt: skip
    except ValueError as exc:
        return KvEstimate(None, n_gpus, facts, str(exc))
    return KvEstimate(size, n_gpus, facts)


def _cache_options(extra_args: Sequence[str]) -> tuple[bool, bool, int | None]:
    """--kv-unified, --swa-full and --ubatch-size (None: llama-server's default) from the extra arguments, the
    flags that change the cache."""
    args = list(extra_args)
    unified = any(a in ("-kvu", "--kv-unified") for a in args)
    swa_full = "--swa-full" in args
    n_ubatch: int | None = None
    for index, arg in enumerate(args[:-1]):
        if arg in ("-ub", "--ubatch-size") and args[index + 1].isdigit():
            n_ubatch = int(args[index + 1])
    return unified, swa_full, n_ubatch

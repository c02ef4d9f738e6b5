"""``config/llm_server_config.json``: the llama-server processes watcher may start, and how."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from watcher.config.base import Frozen

LLM_CONFIG_FILE = "llm_server_config.json"
LLM_SCHEMA_VERSION = "2.1.0"
SERVER_NAME_RE = r"^[a-z][a-z0-9_-]{0,31}$"
# The models `watcher llm install --model NAME` knows (watcher.llm.models.MODELS; a test keeps the two equal).
ModelName = Literal["gemma-270m", "qwen-0.5b", "qwen-1.5b"]


class ServerConfig(Frozen):
    """One llama-server process: how to start it and when to stop it."""

    binary: Path | None = Field(
        None,
        description="llama-server executable. null: $WATCHER_LLAMA_SERVER, then llama-server on PATH, "
        "then the binary built by `watcher llm install`.",
    )
    model_path: Path | None = Field(
        None,
        description="GGUF model file. null: $WATCHER_MODEL, then the model assembled by `watcher llm install`.",
    )
    model: ModelName | None = Field(
        None,
        description="A model assembled by `watcher llm install --model NAME`, used when model_path and "
        "$WATCHER_MODEL are unset. null: the default judge.",
    )
    host: str = Field("127.0.0.1", description="Address the server binds to. Loopback unless you mean it.")
    port: int = Field(18080, ge=1, le=65535, description="TCP port of the server.")
    context_length: int = Field(32768, gt=0, description="--ctx-size: total context, shared by the slots.")
    gpu_layers: int = Field(99, ge=-1, description="--n-gpu-layers: layers offloaded to GPUs (ignored on CPU).")
    gpus: tuple[int, ...] = Field(
        (), description="CUDA device indices the server may use (CUDA_VISIBLE_DEVICES). Empty: all."
    )
    parallel_slots: int = Field(1, ge=1, le=64, description="--parallel: concurrent sequences.")
    threads: int | None = Field(None, ge=1, description="--threads. null: llama-server's own default.")
    cache_type_k: str = Field("f16", description="--cache-type-k: KV cache type of keys.")
    cache_type_v: str = Field("f16", description="--cache-type-v: KV cache type of values.")
    chat_template: str | None = Field(
        None,
        description="--chat-template: one of llama-server's built-in templates (gemma, chatml, deepseek3, ...) for "
        "a model whose GGUF has no chat template. null: the model's own; without one, the server's ChatML "
        "fallback, which every decision record then names.",
    )
    chat_template_file: Path | None = Field(
        None, description="--chat-template-file: a Jinja chat template used instead of the model's own."
    )
    thinking: Literal["off", "bounded"] = Field(
        "off",
        description="Reasoning models (<think>): off - no thinking (--reasoning-budget 0 and the template's "
        "enable_thinking=false); bounded - a <think> section of at most think_max_chars before the "
        "grammar-constrained answer. Models without thinking ignore it.",
    )
    think_max_chars: int = Field(
        1200, ge=16, le=20000, description="bounded thinking: the grammar's limit on the <think> section."
    )
    extra_args: tuple[str, ...] = Field((), description="Further llama-server arguments, passed as given.")
    health_check_deadline_sec: float = Field(
        300.0, gt=0, description="Seconds to wait for /health 200 before the start is abandoned."
    )
    health_poll_interval_sec: float = Field(
        0.02, gt=0, le=1, description="Seconds between /health polls while starting."
    )
    idle_timeout_sec: float = Field(
        600.0, ge=0, description="Stop the server after this long without an evaluation. 0: never."
    )
    stop_timeout_sec: float = Field(10.0, gt=0, description="Seconds between SIGTERM and SIGKILL on stop.")
    log_dir: Path = Field(Path(".watcher/logs"), description="Folder of the per-server log file, relative to the root.")

    @model_validator(mode="after")
    def _one_template(self) -> ServerConfig:
        if self.chat_template and self.chat_template_file:
            raise ValueError("chat_template and chat_template_file exclude each other")
        return self

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"


class LLMServerConfig(Frozen):
    """The file ``config/llm_server_config.json``."""

    schema_version: Literal["2.1.0"] = Field(description="Version of this file's format.")
    servers: dict[Annotated[str, Field(pattern=SERVER_NAME_RE)], ServerConfig] = Field(
        description="Named servers; `primary` is required and used unless a request names another."
    )

    @field_validator("servers")
    @classmethod
    def _primary_required(cls, value: dict[str, ServerConfig]) -> dict[str, ServerConfig]:
        if "primary" not in value:
            raise ValueError("a server named 'primary' is required")
        return value

    @model_validator(mode="after")
    def _distinct_ports(self) -> LLMServerConfig:
        seen: dict[tuple[str, int], str] = {}
        for name, server in self.servers.items():
            key = (server.host, server.port)
            if key in seen:
                raise ValueError(f"servers {seen[key]!r} and {name!r} both use {server.host}:{server.port}")
            seen[key] = name
        return self

"""Configuration: frozen pydantic models for ``config/*.json``, validated once and passed down.

Every default is documented in its ``Field(description=...)``; the same text feeds the generated JSON Schemas in
``schemas/`` and the README's reference table, so the three cannot drift apart.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from watcher.config_jobs import JobsConfig, LearningLoopConfig, PolicyConfig
from watcher.errors import ConfigError
from watcher.resources import packaged_dir

LLM_CONFIG_FILE = "llm_server_config.json"
WATCHER_CONFIG_FILE = "watcher.json"
LLM_SCHEMA_VERSION = "2.1.0"

# A dotted path into a JSON document: names and [index] parts, e.g. ``metrics.trials[0].score``.
CHECK_PATH_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\[\d+\])*(\.[A-Za-z_][A-Za-z0-9_]*(\[\d+\])*)*$")
SERVER_NAME_RE = r"^[a-z][a-z0-9_-]{0,31}$"
M = TypeVar("M", bound=BaseModel)


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


# ---------------------------------------------------------------------------------------------------------------
# config/llm_server_config.json
# ---------------------------------------------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------------------------------------------
# config/watcher.json
# ---------------------------------------------------------------------------------------------------------------


class Folders(Frozen):
    """Folders, relative to the root (the folder that holds ``config/``)."""

    requests: Path = Field(Path("watcher_requests"), description="Spool: drop request files here.")
    processing: Path = Field(
        Path("watcher_requests/processing"), description="Claimed requests, while they are worked on."
    )
    done: Path = Field(Path("watcher_requests/done"), description="Requests that have their decision.")
    rejected: Path = Field(
        Path("watcher_requests/rejected"), description="Invalid requests, each with <name>.error.json."
    )
    decisions: Path = Field(Path("watcher_decisions"), description="Decision files, <request id>.json.")
    escalations: Path = Field(Path("watcher_escalations"), description="Escalations for a person.")
    state: Path = Field(Path(".watcher"), description="Daemon state: lock, pid records, seen hashes, metrics.")


class StepConfig(Frozen):
    """One pipeline step whose output files are judged."""

    name: str = Field(description="Human name of the step.")
    output_glob: str = Field(description="Glob (relative to the root) of the files the step writes.")
    schema_file: str = Field(description="JSON Schema of the output, a file name in schemas/.")
    grammar: str = Field("agent_decision", description="Grammar used to judge the output.")
    ask_model: Literal["always", "borderline", "never"] = Field(
        "always",
        description="always: the model judges every output; borderline: only outputs the checks cannot "
        "settle; never: checks alone.",
    )
    borderline_margin: float = Field(
        0.1,
        ge=0,
        description="In borderline mode, a check passes clearly when it clears its threshold by this "
        "fraction of the threshold.",
    )
    on_hard_failure: Literal["retry", "escalate"] = Field(
        "retry", description="Final decision when a hard check fails."
    )
    min_confidence: float = Field(
        0.0, ge=0, le=1, description="A model decision below this confidence becomes escalate."
    )
    instructions: str = Field("", description="Extra instructions for the model about this step.")


class Check(Frozen):
    """A deterministic threshold on one value of a step output."""

    path: str = Field(description="Dotted path into the output, e.g. `metrics.best_score` or `trials[0].x`.")
    op: Literal[">=", "<=", ">", "<", "==", "!=", "between"] = Field(description="Comparison.")
    value: float | None = Field(None, description="Threshold for every op but `between`.")
    range: tuple[float, float] | None = Field(None, description="[low, high], inclusive, for `between`.")
    severity: Literal["hard", "soft"] = Field("hard", description="hard: a failure can never proceed.")
    hard_limit: float | None = Field(
        None,
        description="Soft checks with `>=`, `<=`, `>` or `<`: a value beyond this fails the check as hard. "
        "Between `value` and `hard_limit` the failure stays soft (the model weighs it).",
    )
    hard_range: tuple[float, float] | None = Field(
        None,
        description="Soft `between` checks: a value outside this wider [low, high] fails the check as hard.",
    )
    message: str = Field(description="What it means when the check fails.")

    @field_validator("path")
    @classmethod
    def _path_syntax(cls, value: str) -> str:
        if not CHECK_PATH_RE.match(value):
            raise ValueError(f"bad path syntax {value!r}: use names and [index], joined by dots")
        return value

    @model_validator(mode="after")
    def _operand(self) -> Check:
        if self.op == "between":
            if self.range is None or self.range[0] > self.range[1]:
                raise ValueError("op 'between' needs range [low, high] with low <= high")
        elif self.value is None:
            raise ValueError(f"op {self.op!r} needs a value")
        self._check_hard_tier()
        return self

    def _check_hard_tier(self) -> None:
        """A hard tier belongs to a soft check and lies beyond its threshold, on the failing side."""
        if self.hard_limit is None and self.hard_range is None:
            return
        if self.severity != "soft":
            raise ValueError("hard_limit and hard_range belong to soft checks; a hard check already fails hard")
        if self.op == "between":
            self._check_hard_range()
        elif self.hard_range is not None:
            raise ValueError(f"hard_range belongs to op 'between'; op {self.op!r} takes hard_limit")
        elif self.op in ("==", "!="):
            raise ValueError(f"op {self.op!r} has no side to fail on: it takes no hard_limit")
        else:
            self._check_hard_limit()

    def _check_hard_range(self) -> None:
        if self.hard_limit is not None:
            raise ValueError("op 'between' takes hard_range [low, high], not hard_limit")
        assert self.range is not None and self.hard_range is not None
        low, high = self.hard_range
        if not low <= self.range[0] <= self.range[1] <= high:
            raise ValueError(f"hard_range {list(self.hard_range)} must contain range {list(self.range)}")

    def _check_hard_limit(self) -> None:
        assert self.value is not None and self.hard_limit is not None
        lower_fails = self.op in (">=", ">")
        if (self.hard_limit > self.value) if lower_fails else (self.hard_limit < self.value):
            side = "at or below" if lower_fails else "at or above"
            raise ValueError(
                f"hard_limit {self.hard_limit:g} must lie {side} value {self.value:g}: on the side where op "
                f"{self.op!r} fails"
            )


class Limits(Frozen):
    max_file_bytes: int = Field(1_048_576, gt=0, description="Larger input files are rejected unread.")
    concurrency: int | None = Field(
        None, ge=1, description="Evaluations at once. null: the primary server's parallel_slots."
    )
    summary_chars: int = Field(4000, ge=200, description="Size bound of the step-output summary put into a prompt.")
    cpu: Literal["auto", "any"] | Annotated[int, Field(ge=0)] = Field(
        "auto",
        description="The CPU the daemon's own threads run on. They share one interpreter lock, and spread over "
        "CPUs each handoff wakes another CPU (a burst of requests drained 1.7x slower). The LLM server and jobs "
        "it starts get every CPU it was given. auto: the last CPU it may use; any: let the kernel place them.",
    )


class Intake(Frozen):
    rescan_interval_sec: float = Field(
        30.0, gt=0, description="Full rescan of watched folders; finds files whose events were lost."
    )
    settle_sec: float = Field(
        0.5, ge=0, description="A file is read once its size and mtime have not changed for this long."
    )
    invalid_grace_sec: float = Field(
        5.0, ge=0, description="An unparseable file is retried for this long before it is rejected."
    )
    polling_observer: bool = Field(False, description="Poll instead of inotify (network filesystems).")


class Evaluation(Frozen):
    server: str = Field("primary", description="Server used for evaluations.")
    temperature: float = Field(0.0, ge=0, le=2, description="Sampling temperature.")
    seed: int = Field(42, description="Sampling seed, for repeatable decisions.")
    max_tokens: int = Field(
        640,
        gt=0,
        description="Token limit of one answer; doubled once on truncation. Enough for the answers the "
        "shipped grammars produce in practice, so a first attempt is rarely cut short.",
    )
    max_attempts: int = Field(3, ge=1, le=10, description="Grammar-constrained attempts before the fallback.")
    request_timeout_sec: float = Field(180.0, gt=0, description="HTTP timeout of one completion.")


class WatcherConfig(Frozen):
    """The file ``config/watcher.json``."""

    folders: Folders = Field(default_factory=Folders, description="Where files live.")
    steps: dict[Annotated[str, Field(pattern=r"^[1-9][0-9]*$")], StepConfig] = Field(
        description="Pipeline steps by number."
    )
    checks: dict[str, tuple[Check, ...]] = Field(
        default_factory=dict, description="Deterministic checks per step number."
    )
    limits: Limits = Field(default_factory=Limits, description="Size, concurrency and CPU limits.")
    intake: Intake = Field(default_factory=Intake, description="How the spool is watched.")
    evaluation: Evaluation = Field(default_factory=Evaluation, description="How the model is asked.")
    jobs: JobsConfig = Field(default_factory=JobsConfig, description="GPU jobs: selfplay and how jobs are run.")
    policy: PolicyConfig = Field(
        default_factory=PolicyConfig, description="Limits of autonomous action; outside them, an escalation."
    )
    learning_loop: LearningLoopConfig = Field(
        default_factory=LearningLoopConfig, description="Steps of the learning loop and its retry bound."
    )

    @model_validator(mode="after")
    def _checks_name_known_steps(self) -> WatcherConfig:
        unknown = sorted(set(self.checks) - set(self.steps))
        if unknown:
            raise ValueError(f"checks for unknown step(s) {', '.join(unknown)}; steps are {sorted(self.steps)}")
        return self


# ---------------------------------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    """Both config files, validated, plus where they came from."""

    config_dir: Path
    root: Path
    llm: LLMServerConfig
    watcher: WatcherConfig

    def path(self, relative: Path | str) -> Path:
        """A path from the config, made absolute against the root."""
        candidate = Path(relative).expanduser()
        return candidate if candidate.is_absolute() else self.root / candidate

    def server(self, name: str = "primary") -> ServerConfig:
        try:
            return self.llm.servers[name]
        except KeyError:
            file = self.config_dir / LLM_CONFIG_FILE
            raise ConfigError(file, f"servers.{name}", "no such server") from None


def default_config_dir() -> Path:
    """$WATCHER_CONFIG_DIR, else ./config when it exists, else the config shipped with the package."""
    env = os.environ.get("WATCHER_CONFIG_DIR")
    if env:
        return Path(env).expanduser().resolve()
    local = Path.cwd() / "config"
    if (local / WATCHER_CONFIG_FILE).is_file():
        return local.resolve()
    return packaged_dir("config")


def load_settings(config_dir: Path | None = None, root: Path | None = None) -> Settings:
    config_dir = (config_dir or default_config_dir()).resolve()
    if root is None:
        env_root = os.environ.get("WATCHER_ROOT")
        root = Path(env_root).resolve() if env_root else config_dir.parent
        if config_dir == packaged_dir("config"):
            root = Path.cwd()
    llm = load_model(config_dir / LLM_CONFIG_FILE, LLMServerConfig)
    watcher = load_model(config_dir / WATCHER_CONFIG_FILE, WatcherConfig)
    if watcher.evaluation.server not in llm.servers:
        raise ConfigError(
            config_dir / WATCHER_CONFIG_FILE,
            "evaluation.server",
            f"names server {watcher.evaluation.server!r}, not in {LLM_CONFIG_FILE}",
        )
    return Settings(config_dir=config_dir, root=root.resolve(), llm=llm, watcher=watcher)


def load_model(file: Path, model: type[M]) -> M:
    data = read_json(file)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise config_error_from(file, exc) from None


def read_json(file: Path) -> Any:
    """Parse a JSON file; errors name the file, and the line and column of a syntax error."""
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(file, "", "file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(file, "", f"cannot read: {exc}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(file, f"line {exc.lineno} column {exc.colno}", f"invalid JSON: {exc.msg}") from None


def config_error_from(file: Path, exc: ValidationError) -> ConfigError:
    """One ConfigError whose text has one line per broken rule: ``file: key.path: rule``."""
    lines = [f"{format_loc(err['loc'])}: {err['msg']}" for err in exc.errors()]
    first = exc.errors()[0]
    error = ConfigError(file, format_loc(first["loc"]), first["msg"])
    if len(lines) > 1:
        error.args = ("\n".join(f"{file}: {line}" for line in lines),)
    return error


def format_loc(loc: tuple[int | str, ...]) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        elif "[" in item or "function-after" in item:
            continue  # pydantic's internal validator labels are not key paths
        else:
            parts.append(f".{item}" if parts else item)
    return "".join(parts) or "(top level)"

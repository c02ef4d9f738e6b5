"""``config/watcher.json`` and the loaded settings: both config files, validated once and passed down.

Every default is documented in its ``Field(description=...)``; the same text feeds the generated JSON Schemas in
``schemas/`` and the README's reference table, so the three cannot drift apart.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, model_validator

from watcher.config.base import Frozen, load_model
from watcher.config.jobs import JobsConfig, LearningLoopConfig, PolicyConfig
from watcher.config.pipeline import NotifyConfig, PipelineConfig, policy_from_file
from watcher.config.server import LLM_CONFIG_FILE, LLMServerConfig, ServerConfig
from watcher.config.steps import STEP_KEY_PATTERN, Check, StepConfig
from watcher.core.datadirs import packaged_dir
from watcher.errors import ConfigError

WATCHER_CONFIG_FILE = "watcher.json"


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


class IntakeConfig(Frozen):
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
    pipeline_root: Path = Field(
        Path("."),
        description="The pipeline's root folder, where it writes its outputs; step output_glob and check file "
        "paths are relative to it. Relative to the root (the folder that holds config/).",
    )
    steps: dict[Annotated[str, Field(pattern=STEP_KEY_PATTERN)], StepConfig] = Field(
        description='Pipeline steps by number as the pipeline names them: "1", "2.5".'
    )
    checks: dict[str, tuple[Check, ...]] = Field(
        default_factory=dict, description="Deterministic checks per step number."
    )
    limits: Limits = Field(default_factory=Limits, description="Size, concurrency and CPU limits.")
    intake: IntakeConfig = Field(default_factory=IntakeConfig, description="How the spool is watched.")
    evaluation: Evaluation = Field(default_factory=Evaluation, description="How the model is asked.")
    jobs: JobsConfig = Field(default_factory=JobsConfig, description="GPU jobs: selfplay and how jobs are run.")
    policy: PolicyConfig = Field(
        default_factory=PolicyConfig, description="Limits of autonomous action; outside them, an escalation."
    )
    learning_loop: LearningLoopConfig = Field(
        default_factory=LearningLoopConfig, description="Steps of the learning loop and its retry bound."
    )
    pipeline: PipelineConfig = Field(
        default_factory=PipelineConfig, description="The pipeline's approval file, request mapping, policy file."
    )
    notify: NotifyConfig = Field(default_factory=NotifyConfig, description="Who is told of escalations and faults.")
    decision_log: Path | None = Field(
        Path("watcher_decisions.jsonl"),
        description="Every decision is also appended here as one JSON line, relative to the root. null: none.",
    )

    @model_validator(mode="after")
    def _checks_name_known_steps(self) -> WatcherConfig:
        unknown = sorted(set(self.checks) - set(self.steps))
        if unknown:
            raise ValueError(f"checks for unknown step(s) {', '.join(unknown)}; steps are {sorted(self.steps)}")
        return self


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

    @property
    def pipeline_root(self) -> Path:
        """Where the pipeline writes: step output globs and check files are relative to it."""
        return Path(os.path.normpath(self.path(self.watcher.pipeline_root)))

    def pipeline_path(self, relative: Path | str) -> Path:
        """A path of the pipeline's, made absolute against pipeline_root."""
        candidate = Path(relative).expanduser()
        return candidate if candidate.is_absolute() else self.pipeline_root / candidate

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
    root = root.resolve()
    if watcher.pipeline.policy_file is not None:
        policy_file = watcher.pipeline.policy_file
        policy = policy_from_file(watcher.policy, policy_file if policy_file.is_absolute() else root / policy_file)
        watcher = watcher.model_copy(update={"policy": policy})
    return Settings(config_dir=config_dir, root=root, llm=llm, watcher=watcher)

"""Configuration: frozen pydantic models of ``config/*.json``, loaded and validated once, then passed down.

``base`` (what every model shares), ``server`` (llm_server_config.json), ``steps`` (the pipeline's steps and
checks), ``jobs`` (GPU jobs, policy, learning loop), ``settings`` (watcher.json and loading), ``reference`` (the
README's reference table). The names most callers need are importable from here.
"""

from watcher.config.server import LLM_CONFIG_FILE, LLMServerConfig, ServerConfig
from watcher.config.settings import (
    WATCHER_CONFIG_FILE,
    Evaluation,
    Folders,
    IntakeConfig,
    Limits,
    Settings,
    WatcherConfig,
    default_config_dir,
    load_settings,
)
from watcher.config.steps import Check, StepConfig, StreamSpec, step_order

__all__ = [
    "LLM_CONFIG_FILE",
    "WATCHER_CONFIG_FILE",
    "Check",
    "Evaluation",
    "Folders",
    "IntakeConfig",
    "LLMServerConfig",
    "Limits",
    "ServerConfig",
    "Settings",
    "StepConfig",
    "StreamSpec",
    "WatcherConfig",
    "default_config_dir",
    "load_settings",
    "step_order",
]

"""One exception tree for watcher. Foreign errors are converted at the boundary (``raise ... from exc``).

WatcherError
├── ConfigError              a config file is unreadable or breaks a rule (names file and key path)
├── ProvisionError           llama-server could not be built or the model assembled
├── LLMServerError           anything about a llama-server process (names the server)
│   ├── BinaryNotFound       no llama-server executable could be resolved
│   ├── ModelNotFound        no model file could be resolved
│   ├── PortInUse            a foreign process holds the configured port
│   ├── ServerStartError     the process exited before it became healthy
│   ├── ServerStartTimeout   not healthy before the deadline
│   └── ServerUnavailable    a request to the server failed (connection, HTTP error)
├── GrammarError             a grammar file is missing or does not compile
├── InputError               a file given to watcher is invalid (names the file and the rule)
│   └── SchemaViolation      ... because it does not match its JSON Schema
├── EvaluationError          no validated decision could be obtained (carries every attempt)
├── PolicyViolation          a request asks for something the config does not allow
└── AlreadyRunning           another daemon holds the spool's lock (names the lock file and its pid)
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any


class WatcherError(Exception):
    """Base of every error watcher raises on purpose."""


class ConfigError(WatcherError):
    def __init__(self, file: Path | str, key_path: str, rule: str) -> None:
        self.file = Path(file)
        self.key_path = key_path
        self.rule = rule
        where = f"{self.file}: {key_path}" if key_path else str(self.file)
        super().__init__(f"{where}: {rule}")


class ProvisionError(WatcherError):
    pass


class LLMServerError(WatcherError):
    def __init__(self, server: str, message: str) -> None:
        self.server = server
        super().__init__(f"llm server {server!r}: {message}")


class BinaryNotFound(LLMServerError):
    pass


class ModelNotFound(LLMServerError):
    pass


class PortInUse(LLMServerError):
    pass


class ServerStartError(LLMServerError):
    pass


class ServerStartTimeout(LLMServerError):
    pass


class ServerUnavailable(LLMServerError):
    pass


class RequestRejected(LLMServerError):
    pass


class GrammarError(WatcherError):
    pass


class GrammarRejected(GrammarError):
    def __init__(self, server: str, message: str) -> None:
        self.server = server
        super().__init__(f"llm server {server!r} rejected the grammar: {message}")


class InputError(WatcherError):
    def __init__(self, file: Path | str, rule: str, details: Sequence[str] = ()) -> None:
        self.file = Path(file)
        self.rule = rule
        self.details = list(details)
        text = f"{self.file}: {rule}"
        if self.details:
            text += "\n  " + "\n  ".join(self.details)
        super().__init__(text)


class SchemaViolation(InputError):
    pass


class EvaluationError(WatcherError):
    def __init__(self, message: str, attempts: Sequence[dict[str, Any]] = ()) -> None:
        self.attempts = list(attempts)
        super().__init__(message)


class PolicyViolation(WatcherError):
    pass


class AlreadyRunning(WatcherError):
    def __init__(self, lock_file: Path | str, pid: int | None) -> None:
        self.lock_file = Path(lock_file)
        self.pid = pid
        holder = f"watcher pid {pid}" if pid else "another watcher"
        super().__init__(f"{self.lock_file}: spool is held by {holder}; one daemon per spool")

"""One exception tree for watcher. Foreign errors are converted at the boundary (``raise ... from exc``).

Each class maps to one exit code of the ``watcher`` command (``watcher.cli.ERROR_CODES``, named in
``watcher.exitcodes``). Input faults (the file is wrong: reject it) are ``InputError`` and ``PolicyViolation``;
everything else is a fault of the installation or the server (we are broken: wait, report, never reject).

WatcherError                                                                    exit code
├── ConfigError              a config file is unreadable or breaks a rule       CONFIG_ERROR (3)
│                            (names file and key path)
├── ProvisionError           llama-server could not be built or the model       PROVISION_FAILED (8)
│                            assembled
├── LLMServerError           anything about a llama-server process              SERVER_UNAVAILABLE (4)
│   │                        (names the server)
│   ├── BinaryNotFound       no llama-server executable could be resolved
│   ├── ModelNotFound        no model file could be resolved
│   ├── PortInUse            a foreign process holds the configured port
│   ├── ServerStartError     the process exited before it became healthy
│   ├── ServerStartTimeout   not healthy before the deadline
│   ├── ServerUnavailable    a request to the server failed (connection, HTTP error)
│   └── RequestRejected      the server answered a request with an error status
├── GrammarError             a grammar file is missing or does not compile      GRAMMAR_ERROR (9)
│   └── GrammarRejected      ... the server refused to compile it
├── InputError               a file given to watcher is invalid                 INVALID_INPUT (2)
│   │                        (names the file and the rule)
│   ├── SchemaViolation      ... because it does not match its JSON Schema
│   └── StepNotReady         ... not yet: its step is still rewriting it (the
│                            daemon waits for the next version, never rejects)
├── EvaluationError          no validated decision could be obtained            EVALUATION_FAILED (5)
│   │                        (carries every attempt)
│   └── AnswerInvalid        one answer failed a validation stage (json, schema,
│                            model); becomes a re-ask inside the evaluator
├── PolicyViolation          a request asks for what the config does not allow  POLICY_DENIED (7)
├── RecordInvalid            a decision record breaks its own model: a bug of   INTERNAL_ERROR (10)
│                            watcher, never blamed on the request
└── AlreadyRunning           another daemon holds the spool's lock              ALREADY_RUNNING (6)
                             (names the lock file and its pid)
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


class StepNotReady(InputError):
    """A step output its step is still rewriting (its ``ready_when`` is false): judged once it is ready."""

    def __init__(self, file: Path | str, step: str, condition: str) -> None:
        super().__init__(file, f"waiting for step {step} to finish ({condition} is not yet true)")
        self.step = step


class EvaluationError(WatcherError):
    def __init__(self, message: str, attempts: Sequence[dict[str, Any]] = ()) -> None:
        self.attempts = list(attempts)
        super().__init__(message)


class AnswerInvalid(EvaluationError):
    """An answer failed one stage of validation; ``stage`` is json, schema or model. Never leaves the evaluator:
    it becomes a re-ask, and finally part of the EvaluationError that carries every attempt."""

    def __init__(self, stage: str, message: str) -> None:
        self.stage = stage
        super().__init__(f"{stage}: {message}")


class PolicyViolation(WatcherError):
    pass


class RecordInvalid(WatcherError):
    """The record a handler produced does not fit the decision record model (or holds a NaN): our bug."""


class AlreadyRunning(WatcherError):
    def __init__(self, lock_file: Path | str, pid: int | None) -> None:
        self.lock_file = Path(lock_file)
        self.pid = pid
        holder = f"watcher pid {pid}" if pid else "another watcher"
        super().__init__(f"{self.lock_file}: spool is held by {holder}; one daemon per spool")

"""Exit codes of the ``watcher`` command, one name each so scripts can tell failures apart."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    FAILURE = 1  # a check failed or an unexpected error
    INVALID_INPUT = 2  # the file given does not parse or does not match its schema
    CONFIG_ERROR = 3  # a config file is broken
    SERVER_UNAVAILABLE = 4  # llama-server could not be started or reached
    EVALUATION_FAILED = 5  # no validated decision could be obtained
    ALREADY_RUNNING = 6  # another daemon holds the spool
    POLICY_DENIED = 7  # the request asks for what the config does not allow
    PROVISION_FAILED = 8  # llama-server could not be built or the model assembled
    GRAMMAR_ERROR = 9  # a grammar file is missing or does not compile
    INTERNAL_ERROR = 10  # a decision record broke its own model: a bug of watcher
    INTERRUPTED = 130

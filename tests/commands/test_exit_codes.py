"""Every error class of the exception tree maps to a named exit code, and the tree is drawn in its docstring."""

from __future__ import annotations

import pytest

from watcher import errors
from watcher.cli import exit_code_for
from watcher.exitcodes import ExitCode

pytestmark = pytest.mark.timeout(10)


def error_classes() -> list[type[errors.WatcherError]]:
    found: list[type[errors.WatcherError]] = []
    pending = [errors.WatcherError]
    while pending:
        cls = pending.pop()
        found.append(cls)
        pending.extend(cls.__subclasses__())
    return [cls for cls in found if cls is not errors.WatcherError]


def instance(cls: type[errors.WatcherError]) -> errors.WatcherError:
    """An instance whatever the constructor wants: the classes take a file, a server, a stage or a message."""
    for args in (("x",), ("x", "y"), ("x", "y", "z")):
        try:
            return cls(*args)
        except TypeError:
            continue
    raise AssertionError(f"cannot build {cls.__name__}")


@pytest.mark.parametrize("cls", error_classes(), ids=lambda cls: cls.__name__)
def test_every_error_class_has_a_named_exit_code(cls: type[errors.WatcherError]) -> None:
    code = exit_code_for(instance(cls))
    assert code not in (ExitCode.OK, ExitCode.FAILURE), f"{cls.__name__} falls through to {code!r}"


@pytest.mark.parametrize("cls", error_classes(), ids=lambda cls: cls.__name__)
def test_every_error_class_is_drawn_in_the_tree(cls: type[errors.WatcherError]) -> None:
    assert f"── {cls.__name__} " in (errors.__doc__ or "")

"""The daemon's own threads on one CPU; the processes it starts on every CPU it was given.

CPython threads take turns holding one interpreter lock. Spread over CPUs, every handoff of the lock wakes a
thread on another CPU, an inter-processor interrupt that is costly in a VM; on one CPU it is a context switch.
On a 2-core VM, a 10,000-file burst ran at 1,110-1,240 requests/s with the threads spread and at 1,740-1,980/s
with them on one CPU, at half the CPU time per request (``bench/intake.py --cpu any`` against the default). Python
code runs one thread at a time anyway, so one CPU is what the daemon can use.

On Linux the CPU affinity belongs to each thread, and a new thread or child process inherits it from the thread
that creates it. So the daemon pins its main thread before it starts any other thread (they inherit the pin), and
every process it starts (the LLM server, GPU jobs) is started from a thread that has the whole mask again
(``unpinned``), so they get every CPU the daemon was given.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator
from typing import Literal

from loguru import logger

CpuSetting = Literal["auto", "any"] | int


class _Given:
    """The mask before the first pin: what child processes get."""

    lock = threading.Lock()
    mask: frozenset[int] | None = None


def supported() -> bool:
    return hasattr(os, "sched_setaffinity") and hasattr(os, "sched_getaffinity")


def choose(setting: CpuSetting, allowed: frozenset[int]) -> int | None:
    """The CPU to pin to, or None to leave the threads where the kernel puts them."""
    if setting == "any" or len(allowed) < 2:
        return None
    if setting == "auto":
        return max(allowed)  # the last one: CPU 0 usually takes more interrupts and housekeeping
    if setting not in allowed:
        logger.warning("limits.cpu is {}, but this process may only use CPUs {}; not pinned", setting, sorted(allowed))
        return None
    return setting


def pin_this_thread(setting: CpuSetting) -> Callable[[], None]:
    """Pin the calling thread (and the threads it starts from now on) to one CPU; returns the undo."""
    if not supported():
        return lambda: None
    before = frozenset(os.sched_getaffinity(0))
    cpu = choose(setting, before)
    if cpu is None:
        return lambda: None
    with _Given.lock:
        _Given.mask = before if _Given.mask is None else _Given.mask
    os.sched_setaffinity(0, {cpu})
    logger.debug("daemon threads on CPU {} (child processes get CPUs {})", cpu, sorted(before))
    return lambda: os.sched_setaffinity(0, before)


def unpin_this_thread() -> None:
    """Give the calling thread the whole mask again, for a thread whose only work is starting processes."""
    if supported() and _Given.mask is not None:
        os.sched_setaffinity(0, _Given.mask)


@contextlib.contextmanager
def unpinned() -> Iterator[None]:
    """Around starting a child process: the child inherits every CPU the daemon was given, not its one CPU."""
    given = _Given.mask
    if not supported() or given is None:
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, given)
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)

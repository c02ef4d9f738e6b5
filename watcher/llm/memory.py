"""Memory a server holds: RSS of its process group, and GPU memory in use as ``nvidia-smi`` reports it."""

from __future__ import annotations

import contextlib
import functools
import shutil
import subprocess
import time
from collections.abc import Sequence

import psutil

from watcher.llm.process import ProcessGroup

NVIDIA_SMI_TIMEOUT_SEC = 10.0
GPU_SETTLE_POLL_SEC = 0.1
MIB = 1024 * 1024


def group_rss(group: ProcessGroup) -> int:
    """Resident memory of every live process in the group, in bytes."""
    total = 0
    for proc in group.members():
        with contextlib.suppress(psutil.Error):
            total += proc.memory_info().rss
    return total


def process_rss(pid: int) -> int | None:
    try:
        return int(psutil.Process(pid).memory_info().rss)
    except psutil.Error:
        return None


@functools.cache
def _nvidia_smi() -> str | None:
    return shutil.which("nvidia-smi")


def gpu_memory_used(gpus: Sequence[int] = ()) -> dict[int, int] | None:
    """Bytes in use per GPU index (only ``gpus`` if given); None when there is no nvidia-smi or it fails."""
    binary = _nvidia_smi()
    if binary is None:
        return None
    query = [binary, "--query-gpu=index,memory.used", "--format=csv,noheader,nounits"]
    try:
        result = subprocess.run(query, capture_output=True, text=True, timeout=NVIDIA_SMI_TIMEOUT_SEC, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    used: dict[int, int] = {}
    for line in result.stdout.splitlines():
        with contextlib.suppress(ValueError):
            index, mib = (int(part.strip()) for part in line.split(","))
            if not gpus or index in gpus:
                used[index] = mib * MIB
    return used


@functools.cache
def gpu_count() -> int:
    """GPUs nvidia-smi sees (0 without one); asked once per process."""
    used = gpu_memory_used()
    return len(used) if used else 0


def gpu_memory_of(pids: Sequence[int]) -> int | None:
    """GPU memory held by these processes, in bytes; None without nvidia-smi (or when it fails)."""
    binary = _nvidia_smi()
    if binary is None:
        return None
    query = [binary, "--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits"]
    try:
        result = subprocess.run(query, capture_output=True, text=True, timeout=NVIDIA_SMI_TIMEOUT_SEC, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    held = 0
    for line in result.stdout.splitlines():
        with contextlib.suppress(ValueError):
            pid, mib = (int(part.strip()) for part in line.split(","))
            held += mib * MIB if pid in pids else 0
    return held


def wait_gpu_released(pids: Sequence[int], held_before: int, bound_sec: float) -> int | None:
    """Poll until the driver no longer lists these processes (it lags their exit) or the bound passes.

    Returns the bytes freed; None without nvidia-smi.
    """
    deadline = time.monotonic() + bound_sec
    while True:
        held = gpu_memory_of(pids)
        if held is None:
            return None
        if held == 0 or time.monotonic() >= deadline:
            return max(0, held_before - held)
        time.sleep(GPU_SETTLE_POLL_SEC)

"""A llama-server started directly (no lifecycle manager), for tests that need one running server."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx

from tests.support.helpers import free_port, wait_until
from watcher.llm.process import SpawnSpec, spawn

# Servers owned by session fixtures: the per-test leak check leaves them alone.
SESSION_SERVER_PIDS: set[int] = set()


class DirectServer:
    """Satisfies ``watcher.protocols.ServerLease`` for a server the test session owns."""

    def __init__(
        self,
        binary: Path,
        model: Path,
        log: Path,
        ctx_size: int = 8192,
        parallel: int = 2,
        *,
        threads: int = 2,
        extra: tuple[str, ...] = (),
        name: str = "test",
    ) -> None:
        self.port = free_port()
        self.name = name
        self.base_url = f"http://127.0.0.1:{self.port}"
        command = [
            str(binary), "--model", str(model), "--host", "127.0.0.1", "--port", str(self.port),
            "--ctx-size", str(ctx_size), "--parallel", str(parallel), "--threads", str(threads), *extra,
        ]  # fmt: skip
        # The lifecycle's spawner: own process group, and the server dies with pytest even if pytest is killed.
        self.process = spawn(SpawnSpec(tuple(command), dict(os.environ), log))
        if not wait_until(self.healthy, timeout=120, interval=0.05):
            self.close()
            raise RuntimeError(f"llama-server did not become healthy; log: {log}")

    def healthy(self) -> bool:
        if self.process.poll() is not None:
            raise RuntimeError(f"llama-server exited with {self.process.returncode}")
        try:
            return httpx.get(f"{self.base_url}/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def ensure_running(self) -> None:
        if self.process.poll() is not None:
            raise RuntimeError("the test server has exited")

    @contextlib.contextmanager
    def in_use(self) -> Iterator[None]:
        yield

    def close(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

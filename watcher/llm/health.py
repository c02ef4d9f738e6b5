"""Readiness of a llama-server: ``/health`` 200, then ``/props`` naming our model and not asleep."""

from __future__ import annotations

import enum
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from threading import Event
from typing import Any

import httpx

PROBE_TIMEOUT = httpx.Timeout(2.0, connect=0.5)


class Readiness(enum.Enum):
    DOWN = "down"  # nothing answers
    LOADING = "loading"  # /health 503 while the model loads
    ASLEEP = "asleep"  # healthy, but llama-server's idle sleep has unloaded the model
    WRONG_MODEL = "wrong_model"  # healthy, but serving another model
    READY = "ready"


@dataclass(frozen=True)
class Probe:
    readiness: Readiness
    detail: str = ""


class HealthProbe:
    """Probes one server; keeps one connection pool so a 20 ms poll does not pay for a new client each time."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self._client = httpx.Client(base_url=base_url, timeout=PROBE_TIMEOUT, trust_env=False)

    def close(self) -> None:
        self._client.close()

    def health_ok(self) -> bool:
        try:
            return self._client.get("/health").status_code == 200
        except httpx.HTTPError:
            return False

    def probe(self, model: Path | None = None) -> Probe:
        try:
            health = self._client.get("/health")
        except httpx.HTTPError as exc:
            return Probe(Readiness.DOWN, type(exc).__name__)
        if health.status_code != 200:
            return Probe(Readiness.LOADING, f"/health {health.status_code}")
        return self.confirm(model)

    def confirm(self, model: Path | None = None) -> Probe:
        """Check ``/props``: a model (``model``, when given) is loaded and awake."""
        try:
            props: dict[str, Any] = self._client.get("/props").raise_for_status().json()
        except (httpx.HTTPError, ValueError) as exc:
            return Probe(Readiness.LOADING, f"/props: {exc}")
        if props.get("is_sleeping"):
            return Probe(Readiness.ASLEEP, "the server reports is_sleeping")
        served = str(props.get("model_path") or "")
        if not served or (model is not None and Path(served).name != model.name):
            return Probe(Readiness.WRONG_MODEL, f"serves {served or 'no model'!r}, not {model}")
        return Probe(Readiness.READY)

    def wait_ready(
        self, model: Path, alive: Callable[[], bool], deadline: float, interval: float, cancel: Event
    ) -> Probe:
        """Poll until READY (or WRONG_MODEL), ``alive()`` turns False, ``cancel`` is set or ``deadline`` passes."""
        probe = Probe(Readiness.DOWN, "not probed")
        while alive():
            probe = self.probe(model)
            if probe.readiness in (Readiness.READY, Readiness.WRONG_MODEL):
                return probe
            if time.monotonic() >= deadline or cancel.wait(interval):
                break
        return probe

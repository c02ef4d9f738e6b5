"""Provisioning: the cache is reused, a corrupted model is caught by its sha256, resolution follows its order."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from watcher.config import ServerConfig
from watcher.errors import BinaryNotFound, ModelNotFound, ProvisionError
from watcher.llm import build as llama_build
from watcher.llm import provision
from watcher.llm.models import TEST_MODEL

pytestmark = pytest.mark.timeout(120)


def test_second_install_reuses_the_cached_build(
    provisioned: provision.InstallResult, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_build(spec: llama_build.BuildSpec) -> Path:
        raise AssertionError("a cached binary must not be rebuilt")

    monkeypatch.setattr(provision, "build_llama_server", no_build)
    result = provision.install(model_name=TEST_MODEL)
    assert result.binary == provisioned.binary
    assert not result.binary_built
    assert not result.model_assembled


def test_corrupted_cached_model_is_detected_and_reassembled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, model_path: Path
) -> None:
    monkeypatch.setenv("WATCHER_CACHE_DIR", str(tmp_path))
    target = provision.cached_model(TEST_MODEL)
    target.parent.mkdir(parents=True)
    target.write_bytes(b"GGUF" + b"\0" * 1024)
    path, assembled = provision.ensure_model(TEST_MODEL)
    assert assembled
    assert path == target
    assert provision.sha256_file(target) == provision.MODEL_SHA256


def _executable(path: Path) -> Path:
    path.write_text("#!/bin/sh\nexit 0\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_binary_resolution_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    configured = _executable(tmp_path / "configured-server")
    from_env = _executable(tmp_path / "env-server")
    path_dir = tmp_path / "bin"
    path_dir.mkdir()
    on_path = _executable(path_dir / "llama-server")
    monkeypatch.setenv("WATCHER_LLAMA_SERVER", str(from_env))
    monkeypatch.setenv("PATH", f"{path_dir}{os.pathsep}{os.environ['PATH']}")
    assert provision.resolve_binary(ServerConfig(binary=configured)) == configured
    assert provision.resolve_binary(ServerConfig()) == from_env
    monkeypatch.delenv("WATCHER_LLAMA_SERVER")
    assert provision.resolve_binary(ServerConfig()) == on_path
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setenv("WATCHER_CACHE_DIR", str(tmp_path / "empty-cache"))
    with pytest.raises(BinaryNotFound, match="watcher llm install"):
        provision.resolve_binary(ServerConfig())


def test_configured_binary_that_is_missing_is_an_error_not_a_fallback(tmp_path: Path) -> None:
    with pytest.raises(BinaryNotFound, match="from the config is not an executable file"):
        provision.resolve_binary(ServerConfig(binary=tmp_path / "nope"))


def test_model_resolution_relative_to_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WATCHER_MODEL", raising=False)
    (tmp_path / "models").mkdir()
    model = tmp_path / "models" / "m.gguf"
    model.write_bytes(b"GGUF")
    assert provision.resolve_model(ServerConfig(model_path=Path("models/m.gguf")), tmp_path) == model
    with pytest.raises(ModelNotFound, match="does not exist"):
        provision.resolve_model(ServerConfig(model_path=Path("models/other.gguf")), tmp_path)


def test_missing_toolchain_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.delenv("CC", raising=False)
    monkeypatch.delenv("CXX", raising=False)
    with pytest.raises(ProvisionError, match=r"cmake, c compiler, c\+\+ compiler not found"):
        llama_build.check_toolchain()


def test_tampered_sdist_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = llama_build.BuildSpec(
        version="0.0.0",
        sdist_sha256="0" * 64,
        downloads=tmp_path / "downloads",
        source=tmp_path / "src",
        build=tmp_path / "build",
        install=tmp_path / "bin",
    )
    spec.downloads.mkdir()
    spec.sdist.write_bytes(b"not the pinned archive")
    monkeypatch.setattr(llama_build, "_download_sdist", lambda spec: None)
    with pytest.raises(ProvisionError, match="does not match the pinned"):
        llama_build.fetch_sources(spec)

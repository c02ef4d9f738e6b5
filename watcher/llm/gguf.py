"""Model facts from a GGUF header, and the KV-cache size llama-server will allocate for them.

The estimate follows llama.cpp's own sizing (``llama_context`` and ``llama_kv_cache_iswa``):

- the context is padded to 256 cells; without a unified cache every slot gets its own stream of
  ``pad(ctx / slots, 256)`` cells, with one it is a single stream of ``ctx`` cells;
- a sliding-window layer keeps only ``pad(min(cells, window * (slots if unified else 1) + n_ubatch), 256)``
  cells per stream (all of them with ``--swa-full``);
- a cell of a layer holds ``head_count_kv * key_length`` keys and ``head_count_kv * value_length`` values,
  each of the cache type's size (quantized types by their block size);
- layers are split over the GPUs, so each GPU holds about ``1 / n_gpus`` of the total.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gguf import GGML_QUANT_SIZES, GGMLQuantizationType, LlamaFileType

from watcher.errors import InputError
from watcher.llm.gguf_header import read_metadata

CELL_PADDING = 256  # llama_context pads n_ctx and each sequence's cells to this

# Sliding-window layer pattern llama.cpp assumes when the GGUF has none: (period, dense layer first).
# With period n and dense_first False, layer i is a sliding-window layer unless i % n == n - 1.
DEFAULT_SWA_PATTERNS: dict[str, tuple[int, bool]] = {
    "gemma2": (2, False),
    "gemma3": (6, False),
    "gemma-embedding": (6, False),
    "gemma3n": (5, False),
    "cohere2": (4, False),
    "olmo2": (4, False),
    "exaone4": (4, False),
    "gpt-oss": (2, False),
    "llama4": (4, False),
}

DEFAULT_UBATCH = 512  # llama-server's default --ubatch-size, which pads the sliding-window cache


@dataclass(frozen=True)
class ModelFacts:
    """What the header says about a model: enough to describe it and to size its KV cache."""

    path: Path
    architecture: str
    name: str
    n_layers: int
    n_ctx_train: int
    n_embd: int
    n_head: int
    n_head_kv: int  # the largest per-layer value
    key_length: int
    value_length: int
    sliding_window: int | None
    swa_layers: tuple[bool, ...]  # per layer: True when it keeps only `sliding_window` cells
    kv_heads_per_layer: tuple[int, ...]
    key_length_swa: int
    value_length_swa: int
    file_size: int
    file_type: str  # quantization of the weights, e.g. "Q4_K_M"

    @property
    def n_swa_layers(self) -> int:
        return sum(self.swa_layers)


def read_model_facts(path: Path | str) -> ModelFacts:
    """Read the GGUF header of ``path``; raises InputError naming the file when it is not a usable GGUF model."""
    path = Path(path)
    meta = read_metadata(path)
    arch = meta.get("general.architecture")
    if not isinstance(arch, str):
        raise InputError(path, "GGUF header has no general.architecture: not a model file")

    def key(name: str, default: Any = None) -> Any:
        return meta.get(f"{arch}.{name}", default)

    n_layers = _required_int(path, meta, f"{arch}.block_count")
    n_embd = _required_int(path, meta, f"{arch}.embedding_length")
    heads = _per_layer(key("attention.head_count", 0), n_layers)
    kv_heads = _per_layer(key("attention.head_count_kv", max(heads)), n_layers)
    n_head = max(heads)
    key_length = int(key("attention.key_length", n_embd // n_head if n_head else 0))
    value_length = int(key("attention.value_length", key_length))
    window = int(key("attention.sliding_window", 0) or 0) or None
    return ModelFacts(
        path=path,
        architecture=arch,
        name=str(meta.get("general.name", path.stem)),
        n_layers=n_layers,
        n_ctx_train=int(key("context_length", 0)),
        n_embd=n_embd,
        n_head=n_head,
        n_head_kv=max(kv_heads),
        key_length=key_length,
        value_length=value_length,
        sliding_window=window,
        swa_layers=_swa_layers(arch, window, key("attention.sliding_window_pattern"), n_layers),
        kv_heads_per_layer=kv_heads,
        key_length_swa=int(key("attention.key_length_swa", key_length)),
        value_length_swa=int(key("attention.value_length_swa", value_length)),
        file_size=path.stat().st_size,
        file_type=_file_type(meta.get("general.file_type")),
    )


def _required_int(path: Path, meta: dict[str, Any], name: str) -> int:
    value = meta.get(name)
    if not isinstance(value, int) or isinstance(value, bool):
        raise InputError(path, f"GGUF header lacks {name}: not a model llama-server can load")
    return value


def _per_layer(value: Any, n_layers: int) -> tuple[int, ...]:
    if isinstance(value, list):
        values = [int(v) for v in value[:n_layers]]
        return tuple(values + [values[-1] if values else 0] * (n_layers - len(values)))
    return (int(value),) * n_layers


def _swa_layers(arch: str, window: int | None, pattern: Any, n_layers: int) -> tuple[bool, ...]:
    if not window:
        return (False,) * n_layers
    if isinstance(pattern, list):
        flags = [bool(v) for v in pattern[:n_layers]]
        return tuple(flags + [False] * (n_layers - len(flags)))
    period, dense_first = DEFAULT_SWA_PATTERNS.get(arch, (1, False))  # unknown: every layer full (upper bound)
    if isinstance(pattern, int):
        period = pattern
    return tuple(_is_swa(il, period, dense_first) for il in range(n_layers))


def _is_swa(il: int, period: int, dense_first: bool) -> bool:
    # Mirrors llama_hparams::set_swa_pattern: period 0 means every layer slides.
    if period == 0:
        return True
    return il % period != 0 if dense_first else il % period < period - 1


def _file_type(value: Any) -> str:
    try:
        return LlamaFileType(int(value)).name.removeprefix("MOSTLY_")
    except (TypeError, ValueError):
        return "unknown"


# ---------------------------------------------------------------------------------------------------------------
# KV-cache estimate
# ---------------------------------------------------------------------------------------------------------------


def estimate_kv_cache_bytes(
    facts: ModelFacts,
    ctx_size: int,
    n_parallel: int = 1,
    cache_type_k: str = "f16",
    cache_type_v: str = "f16",
    *,
    n_gpus: int = 1,
    unified: bool = False,
    n_ubatch: int = DEFAULT_UBATCH,
    swa_full: bool = False,
) -> int:
    """Bytes of KV cache per GPU that llama-server allocates for ``--ctx-size ctx_size --parallel n_parallel``.

    Raises ValueError for a cache type llama.cpp does not know.
    """
    slots = max(1, n_parallel)
    n_ctx = _pad(ctx_size if ctx_size > 0 else facts.n_ctx_train)
    streams, cells = (1, n_ctx) if unified else (slots, _pad(n_ctx // slots))
    swa_cells = cells
    if facts.sliding_window and not swa_full:
        swa_cells = _pad(min(cells, facts.sliding_window * (slots if unified else 1) + n_ubatch))
    k_type, v_type = _cache_type(cache_type_k), _cache_type(cache_type_v)
    total = 0
    for il, heads in enumerate(facts.kv_heads_per_layer):
        swa = facts.swa_layers[il]
        k_len = facts.key_length_swa if swa else facts.key_length
        v_len = facts.value_length_swa if swa else facts.value_length
        per_cell = _row_bytes(k_type, heads * k_len) + _row_bytes(v_type, heads * v_len)
        total += streams * (swa_cells if swa else cells) * per_cell
    return math.ceil(total / max(1, n_gpus))


def _pad(value: int) -> int:
    return (value + CELL_PADDING - 1) // CELL_PADDING * CELL_PADDING


def _cache_type(name: str) -> GGMLQuantizationType:
    try:
        return GGMLQuantizationType[name.upper()]
    except KeyError:
        raise ValueError(f"unknown KV cache type {name!r} (f16, bf16, f32, q8_0, q4_0, ...)") from None


def _row_bytes(kind: GGMLQuantizationType, n: int) -> int:
    block, type_size = GGML_QUANT_SIZES[kind]
    return n // block * type_size


def describe(facts: ModelFacts) -> str:
    """One line for humans: ``gemma3 'Gemma 3 270m' Q4_K_M, 18 layers (15 sliding-window), trained ctx 32768``."""
    window = f" ({facts.n_swa_layers} sliding-window)" if facts.n_swa_layers else ""
    return (
        f"{facts.architecture} {facts.name!r} {facts.file_type}, {facts.n_layers} layers{window}, "
        f"trained ctx {facts.n_ctx_train}, {facts.file_size / 1e9:.2f} GB"
    )

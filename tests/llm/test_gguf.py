"""GGUF header facts and the KV-cache estimate: synthetic headers, then the real model against llama-server."""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path
from typing import Any

import gguf
import pytest

from tests.support.helpers import free_port, wait_until
from watcher.errors import InputError
from watcher.llm.gguf import ModelFacts, describe, estimate_kv_cache_bytes, read_model_facts

MIB = 1024 * 1024


def write_gguf(path: Path, arch: str = "gemma3", layers: int = 6, **extra: Any) -> Path:
    writer = gguf.GGUFWriter(str(path), arch)
    writer.add_block_count(layers)
    writer.add_embedding_length(64)
    writer.add_head_count(4)
    writer.add_head_count_kv(2)
    writer.add_context_length(2048)
    writer.add_key_length(16)
    writer.add_value_length(16)
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_Q8_0)
    writer.add_token_list([f"tok{i}" for i in range(5000)])  # long enough to be skipped, not decoded
    for key, value in extra.items():
        if isinstance(value, list):
            writer.add_array(f"{arch}.{key}", value)
        else:
            writer.add_uint32(f"{arch}.{key}", value)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def test_reads_facts_from_a_synthetic_header(tmp_path: Path) -> None:
    facts = read_model_facts(write_gguf(tmp_path / "m.gguf", **{"attention.sliding_window": 128}))
    assert (facts.architecture, facts.n_layers, facts.n_ctx_train, facts.n_embd) == ("gemma3", 6, 2048, 64)
    assert (facts.n_head, facts.n_head_kv, facts.key_length, facts.value_length) == (4, 2, 16, 16)
    assert facts.sliding_window == 128
    # gemma3's implicit pattern: five sliding-window layers, then one full layer.
    assert facts.swa_layers == (True, True, True, True, True, False)
    assert facts.file_type == "Q8_0"
    assert facts.file_size == (tmp_path / "m.gguf").stat().st_size
    assert "6 layers (5 sliding-window)" in describe(facts)


def test_an_explicit_pattern_in_the_header_wins(tmp_path: Path) -> None:
    pattern = [True, False, True, False, True, False]
    keys = {"attention.sliding_window": 64, "attention.sliding_window_pattern": pattern}
    path = write_gguf(tmp_path / "m.gguf", **keys)
    assert read_model_facts(path).swa_layers == tuple(pattern)


def test_no_window_means_every_layer_is_full(tmp_path: Path) -> None:
    facts = read_model_facts(write_gguf(tmp_path / "m.gguf", arch="llama"))
    assert facts.sliding_window is None
    assert facts.swa_layers == (False,) * 6


@pytest.mark.parametrize(
    ("content", "rule"),
    [(b"", "shorter than a GGUF header"), (b"PK\x03\x04" + b"\0" * 60, "not a GGUF file"),
     (b"GGUF\x03\0\0\0" + b"\xff" * 40, "corrupt GGUF header")],
)  # fmt: skip
def test_a_file_that_is_not_gguf_is_an_input_error_naming_it(tmp_path: Path, content: bytes, rule: str) -> None:
    path = tmp_path / "model.gguf"
    path.write_bytes(content)
    with pytest.raises(InputError, match=rule) as caught:
        read_model_facts(path)
    assert caught.value.file == path


def test_a_missing_file_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot read"):
        read_model_facts(tmp_path / "absent.gguf")


def _facts(**changes: Any) -> ModelFacts:
    base = ModelFacts(
        path=Path("m.gguf"), architecture="x", name="x", n_layers=4, n_ctx_train=8192, n_embd=512, n_head=8,
        n_head_kv=2, key_length=64, value_length=64, sliding_window=None, swa_layers=(False,) * 4,
        kv_heads_per_layer=(2,) * 4, key_length_swa=64, value_length_swa=64, file_size=1, file_type="F16",
    )  # fmt: skip
    return ModelFacts(**{**base.__dict__, **changes})


def test_estimate_of_full_attention_layers() -> None:
    # 4 layers x 4096 cells x (2 heads x 64) x 2 bytes, for K and V.
    assert estimate_kv_cache_bytes(_facts(), 4096, 1) == 4 * 4096 * 128 * 2 * 2


def test_estimate_splits_slots_and_pads_cells() -> None:
    # 3 slots of pad(4000/3 -> 1333, 256) = 1536 cells each.
    assert estimate_kv_cache_bytes(_facts(), 4000, 3) == 3 * 4 * 1536 * 128 * 2 * 2


def test_estimate_of_sliding_window_layers() -> None:
    facts = _facts(sliding_window=512, swa_layers=(True, True, True, False))
    full = 1 * 32768 * 512
    swa = 3 * 1024 * 512  # pad(512 + n_ubatch 512, 256) cells
    assert estimate_kv_cache_bytes(facts, 32768, 1) == full + swa
    # A unified cache shares one stream, so the window grows with the slots instead.
    assert estimate_kv_cache_bytes(facts, 32768, 2, unified=True) == full + 3 * 1536 * 512
    assert estimate_kv_cache_bytes(facts, 32768, 1, swa_full=True) == 4 * 32768 * 512


def test_estimate_of_quantized_cache_and_gpu_split() -> None:
    q8 = estimate_kv_cache_bytes(_facts(), 4096, 1, "q8_0", "q8_0")
    assert q8 == 4 * 4096 * (128 // 32 * 34) * 2
    assert estimate_kv_cache_bytes(_facts(), 4096, 1, "q8_0", "q8_0", n_gpus=2) == q8 // 2
    with pytest.raises(ValueError, match="unknown KV cache type 'q9'"):
        estimate_kv_cache_bytes(_facts(), 4096, 1, "q9")


def test_reading_the_real_header_is_fast(model_path: Path) -> None:
    started = time.monotonic()
    facts = read_model_facts(model_path)
    assert time.monotonic() - started < 1.0
    assert (facts.architecture, facts.n_layers, facts.n_ctx_train) == ("gemma3", 18, 32768)
    assert facts.n_swa_layers == 15


SIZE_LINE = re.compile(r"llama_kv_cache: size =\s+([\d.]+) MiB")


def _server_kv_mib(binary: Path, model: Path, log: Path, ctx: int, parallel: int) -> float:
    """Sum of the ``llama_kv_cache: size`` lines llama-server prints while it loads."""
    port = free_port()
    command = [str(binary), "-m", str(model), "--host", "127.0.0.1", "--port", str(port), "--ctx-size", str(ctx),
               "--parallel", str(parallel), "--threads", "2", "-lv", "4"]  # fmt: skip
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        assert wait_until(lambda: "load_model: initializing" in log.read_text(errors="replace"), 120, 0.05), (
            log.read_text(errors="replace")[-2000:]
        )
    finally:
        process.kill()
        process.wait(timeout=10)
    return sum(float(size) for size in SIZE_LINE.findall(log.read_text(errors="replace")))


@pytest.mark.real_server
@pytest.mark.timeout(240)
@pytest.mark.parametrize(("ctx", "parallel"), [(32768, 1), (4096, 2)])
def test_estimate_matches_what_llama_server_allocates(
    llama_binary: Path, model_path: Path, tmp_path: Path, ctx: int, parallel: int
) -> None:
    printed = _server_kv_mib(llama_binary, model_path, tmp_path / "server.log", ctx, parallel)
    estimated = estimate_kv_cache_bytes(read_model_facts(model_path), ctx, parallel) / MIB
    assert printed > 0
    assert abs(estimated - printed) / printed < 0.10, (estimated, printed)

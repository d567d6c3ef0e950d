"""Hostile and damaged weights configs are refused by name before anything is built."""

from __future__ import annotations

import hashlib
import json
import tracemalloc
from pathlib import Path

import pytest
import torch

from napari_cpadv.errors import FormatError
from napari_cpadv.models import weights
from napari_cpadv.models.detector import make


@pytest.fixture
def saved(tmp_path):
    torch.manual_seed(0)
    return weights.save(make("dae"), tmp_path / "dae")


def _edit(path, change):
    config_path = weights.paths(path)[1]
    config = json.loads(config_path.read_text())
    change(config)
    config_path.write_text(json.dumps(config))


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda c: c["architecture"].update(channels=[5_000_000, 18, 9]), "channels"),
        (lambda c: c["architecture"].update(channels=[-36, 18, 9]), "channels"),
        (lambda c: c["architecture"].update(channels=[36, 18]), "must be a list of 3"),
        (lambda c: c["architecture"].update(dropout=float("nan")), "dropout"),
        (lambda c: c["architecture"].update(attention=True), "unknown architecture keys"),
        (lambda c: c.update(architecture=[1, 2]), "not an object"),
    ],
)
def test_hostile_architectures_are_refused_before_building(saved, change, reason):
    _edit(saved, change)
    tracemalloc.start()
    with pytest.raises(FormatError, match=f"dae.safetensors: .*{reason}"):
        weights.load(saved)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 64 * 2**20  # nothing of the claimed size was allocated


def test_a_config_nested_100000_deep_is_refused(saved):
    config_path = weights.paths(saved)[1]
    config_path.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(FormatError, match="dae.json: JSON nested too deep"):
        weights.load(saved)


def test_nan_weights_are_refused_by_name(tmp_path):
    torch.manual_seed(0)
    det = make("dae")
    with torch.no_grad():
        next(iter(det.parameters()))[0].fill_(float("nan"))
    path = weights.save(det, tmp_path / "nan")
    with pytest.raises(FormatError, match="nan.safetensors: weights contain NaN or infinity"):
        weights.load(path)
    assert hashlib.sha256(path.read_bytes()).hexdigest()  # the file itself is intact


@pytest.mark.parametrize("name", ["dae", "sparse", "resnet18"])
def test_the_architecture_alone_plans_as_the_weights_do(name):
    """The tile preview reads the architecture without loading the tensors: the same
    multiple, margin and cell as the loaded detector, no trained state."""
    shell, loaded = weights.architecture_of(name), weights.resolve(name, None)
    assert (shell.multiple, shell.margin, shell.cell) == (
        loaded.multiple,
        loaded.margin,
        loaded.cell,
    )
    assert type(shell) is type(loaded) and shell.config() == loaded.config()


def test_the_architecture_of_hostile_or_foreign_weights_is_refused(saved):
    with pytest.raises(FormatError, match="for the 'dae' detector, not 'sparse'"):
        weights.architecture_of("sparse", saved)
    _edit(saved, lambda c: c["architecture"].update(channels=[5_000_000, 18, 9]))
    with pytest.raises(FormatError, match="channels"):
        weights.architecture_of("dae", saved)


def test_shipped_weights_are_named_and_a_file_here_of_that_name_wins(tmp_path, monkeypatch):
    from napari_cpadv.slide.synthetic import SAMPLE_DATA

    monkeypatch.chdir(tmp_path)
    assert weights.shipped_names("dae") == ["dae-he", "dae"]
    assert weights.shipped_names("resnet18") == ["resnet18-he", "resnet18"]
    shipped = SAMPLE_DATA / "weights" / "dae-he.safetensors"
    assert weights.paths("dae-he")[0] == shipped
    assert weights.architecture_of("dae", "dae-he").name == "dae"
    with pytest.raises(FormatError, match="shipped: dae-he, dae, resnet18-he"):
        weights.read_config("dae-hx")
    with pytest.raises(FormatError, match="for the 'dae' detector"):
        weights.architecture_of("sparse", "dae-he")

    torch.manual_seed(0)
    before = shipped.read_bytes()
    written = weights.save(make("dae"), "dae-he")  # saved here, never over the shipped file
    assert written.resolve() == tmp_path / "dae-he.safetensors"
    assert shipped.read_bytes() == before
    assert weights.paths("dae-he")[0] == Path("dae-he.safetensors")  # a file here wins
    assert weights.paths(tmp_path / "dae-he")[0] == tmp_path / "dae-he.safetensors"

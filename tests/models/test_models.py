"""Shapes, the detector contract, LCA's behaviour and the weights files."""

from __future__ import annotations

import itertools
import json
import pickle

import numpy as np
import pytest
import torch

from napari_cpadv.errors import FormatError
from napari_cpadv.models import weights
from napari_cpadv.models.dae import DAE
from napari_cpadv.models.detector import NAMES, make, registry
from napari_cpadv.models.lca import LCA
from napari_cpadv.models.resnet import ResNet18
from napari_cpadv.workbench.attack import HEATMAP_DETECTORS

from ..conftest import TINY


@pytest.mark.parametrize("side", [64, 128, 192])
def test_dae_latent_is_half_size_with_nine_channels(side):
    dae = DAE().eval()
    x = torch.rand(2, 3, side, side)
    assert dae.encode(x).shape == (2, 9, side // 2, side // 2)
    assert dae(x).shape == x.shape


def test_dae_layers_are_the_papers():
    dae = DAE()
    assert [tuple(c.weight.shape) for c in (dae.enc1, dae.enc2, dae.enc3)] == [
        (36, 3, 8, 8),
        (18, 36, 4, 4),
        (9, 18, 3, 3),
    ]
    assert [tuple(c.weight.shape) for c in (dae.dec1, dae.dec2, dae.dec3)] == [
        (18, 9, 3, 3),
        (36, 18, 4, 4),
        (3, 36, 8, 8),
    ]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("side", [64, 128])
def test_every_detector_keeps_the_contract(name, side):
    det = make(name, **TINY[name]).eval()
    assert det.name == name and registry()[name] is type(det)
    # what the Attack dock lists without importing torch
    assert (name in HEATMAP_DETECTORS) == (det.output == "cells")
    x = torch.rand(2, 3, side, side)
    out = det(x)
    if det.output == "cells":
        assert out.shape == (2, side // det.cell, side // det.cell)
        assert det.tumour_logits(x).shape == out.shape
        assert side % det.multiple == 0 and det.margin % det.multiple == 0
        z = det.encode(x)
        z = getattr(z, "codes", z)
        assert torch.allclose(det.head(z), out, atol=1e-5)  # latent and head reachable
    else:
        assert out.shape == (2, 2)
        assert det.tumour_logits(x).shape == (2,)
    assert make(name, **det.config()).config() == det.config()


def test_heads_score_both_latents_on_the_same_cells():
    x = torch.rand(1, 3, 128, 128)
    dae, sparse = make("dae").eval(), make("sparse", **TINY["sparse"]).eval()
    assert dae(x).shape == sparse(x).shape == (1, 32, 32)


def _bilinear_residual(out: torch.Tensor) -> float:
    """How far a cell grid is from a 2x bilinear upsampling along its columns: for such a
    grid, four consecutive cells p, q, r, t starting at an odd index satisfy
    3q - p = 3r - t (both give the one coarse value they share)."""
    p, q, r, t = (out[:, i : out.shape[1] - 4 + i : 2] for i in (1, 2, 3, 4))
    return float((3 * q - p - 3 * r + t).abs().max() / out.abs().max())


def test_both_detectors_give_one_value_per_4x4_pixels_without_interpolation():
    """Issue 14, item 7: seed 000 gives both detectors the same head, so the sparse code is
    on the DAE latent's grid (stride 2) and the head's pooling by 2 lands on 4 x 4 cells.
    At stride 4 the head made one value per 8 x 8 and upsampled it bilinearly, which a
    grid with real 4 x 4 detail does not satisfy. The shipped sparse detector is at stride 2."""
    from napari_cpadv.models.weights import resolve

    assert resolve("sparse", None).hyper["stride"] == 2
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    fine = make("sparse", atoms=16, size=8, iterations=5).eval()
    coarse = make("sparse", atoms=16, size=8, stride=4, iterations=5).eval()
    assert fine.hyper["stride"] == 2
    with torch.no_grad():
        grids = {name: det(x)[0] for name, det in
                 (("dae", make("dae").eval()), ("sparse", fine), ("stride 4", coarse))}  # fmt: skip
    assert all(g.shape == (16, 16) for g in grids.values())
    assert _bilinear_residual(grids["stride 4"]) < 1e-5  # upsampled from 8 x 8
    assert _bilinear_residual(grids["sparse"]) > 1e-2  # its own value per 4 x 4
    assert _bilinear_residual(grids["dae"]) > 1e-2


def test_a_dictionary_atom_codes_to_one_dominant_coefficient():
    lca = LCA(atoms=32, size=8, stride=4, lam=0.1, iterations=200, seed=1)
    atom = lca.dictionary.detach()[5]
    x = torch.zeros(1, 3, 32, 32)
    x[0, :, 10:18, 10:18] = atom  # code position (3, 3) covers pixels 4·3 - 2 onwards
    x = 0.5 + 0.2 * x  # an image in [0, 1]; the per-image standardisation undoes the affine map
    codes = lca.encode(x).codes[0]
    flat = codes.flatten()
    top = torch.argsort(flat, descending=True)
    k, r, c = np.unravel_index(int(top[0]), codes.shape)
    assert (k, r, c) == (5, 3, 3)
    assert flat[top[0]] > 3 * flat[top[1]]


def test_lca_energy_decreases_and_codes_are_sparse():
    lca = LCA(atoms=32, size=8, stride=4, lam=0.5, iterations=40)
    x = torch.rand(2, 3, 48, 48)
    xs, _, _ = lca.standardise(x)
    with torch.no_grad():  # Rozell's plain dynamics descend; with momentum they end lower
        plain = [float(lca.energy(xs, c.codes).sum()) for c in lca.iterate(x, momentum=False)]
        fast = [float(lca.energy(xs, c.codes).sum()) for c in lca.iterate(x, tol=0)]
    assert all(b <= a + 1e-3 for a, b in itertools.pairwise(plain))
    assert plain[-1] < 0.95 * plain[0] and fast[-1] < plain[-1]
    code = lca.encode(x)
    assert (code.codes >= 0).all() and (code.codes == 0).float().mean() > 0.5
    assert code.mean.shape == code.std.shape == (2, 1, 1, 1)


def test_lca_synthesis_is_the_transpose_of_analysis():
    lca = LCA(atoms=8, size=8, stride=4)
    x = torch.randn(1, 3, 32, 32)
    a = torch.randn(1, 8, 8, 8)
    lhs = (lca.analysis(x) * a).sum()
    rhs = (x * lca.synthesis(a)).sum()
    assert torch.allclose(lhs, rhs, rtol=1e-4)
    ref = torch.nn.functional.conv_transpose2d(a, lca.dictionary, stride=4, padding=2)
    assert torch.allclose(lca.synthesis(a), ref, atol=1e-4)


def test_resnet_has_torchvisions_names_and_loads_a_torchvision_state_dict(tmp_path):
    names = set(ResNet18().state_dict())
    for key in (
        "conv1.weight",
        "bn1.running_mean",
        "layer1.0.conv2.weight",
        "layer2.0.downsample.0.weight",
        "layer4.1.bn2.bias",
        "fc.weight",
    ):
        assert key in names
    assert len(names) == 122  # torchvision resnet18: 62 parameters + 60 batch-norm buffers
    imagenet = ResNet18(width=64, classes=1000).state_dict()
    path = tmp_path / "resnet18-imagenet.pth"
    torch.save(imagenet, path)
    det = weights.load_torchvision(path)
    assert det.fc.out_features == 2
    assert torch.equal(det.state_dict()["layer3.1.conv1.weight"], imagenet["layer3.1.conv1.weight"])


def test_weights_round_trip(tmp_path):
    det = make("sparse", **TINY["sparse"])
    path = weights.save(det, tmp_path / "w", training={"command": "test"}, metrics={"aucpr": 0.5})
    back = weights.load(path, expect="sparse")
    for k, v in det.state_dict().items():
        assert torch.equal(v, back.state_dict()[k])
    config = json.loads(weights.paths(path)[1].read_text())
    assert config["architecture"]["atoms"] == 16 and config["metrics"] == {"aucpr": 0.5}
    assert not back.training


def test_weights_of_another_architecture_are_refused_with_the_difference(tmp_path):
    path = weights.save(make("dae"), tmp_path / "dae")
    with pytest.raises(FormatError, match=r"for the 'dae' detector .*not 'sparse'"):
        weights.load(path, expect="sparse")
    config_path = weights.paths(path)[1]
    config = json.loads(config_path.read_text())
    config["architecture"]["channels"] = [12, 18, 9]
    config_path.write_text(json.dumps(config))
    with pytest.raises(
        FormatError, match=r"shapes differ: autoencoder.dec2.bias \(36,\) != \(12,\)"
    ):
        weights.load(path)


def test_pickles_are_never_loaded(tmp_path):
    evil = tmp_path / "model.pt"
    evil.write_bytes(pickle.dumps({"x": 1}))
    with pytest.raises(FormatError, match="never unpickles"):
        weights.load(evil)
    with pytest.raises(FormatError, match="without pickle code"):
        weights.load_torchvision(evil)


def test_damaged_or_foreign_weights_are_refused(tmp_path):
    path = weights.save(make("dae"), tmp_path / "dae")
    blob = bytearray(path.read_bytes())
    blob[-1] ^= 0xFF
    path.write_bytes(bytes(blob))
    with pytest.raises(FormatError, match="SHA-256 differs"):
        weights.load(path)
    other = tmp_path / "other.json"
    other.write_text('{"format": "something else"}')
    with pytest.raises(FormatError, match="not a napari-cpadv weights config"):
        weights.load(other)
    with pytest.raises(FormatError) as absent:  # named as typed, the reason first
        weights.load(tmp_path / "absent.safetensors")
    typed = tmp_path / "absent.safetensors"
    reason = "no such weights file (neither absent.safetensors nor absent.json is there)"
    assert str(absent.value) == f"{typed}: {reason}"
    path.with_suffix(".json").unlink()
    with pytest.raises(FormatError, match=r"dae.safetensors: its JSON config dae.json is missing"):
        weights.load(path)


def _tumour_tile(side: int = 64) -> torch.Tensor:
    """A level-2 tile of the sample slide at a tumour's centre, as the detector sees it."""
    from napari_cpadv.annotations import read_annotations
    from napari_cpadv.slide import open_slide

    from ..conftest import SAMPLE

    slide = open_slide(SAMPLE)
    x0, y0, x1, y1 = next(a for a in read_annotations(SAMPLE.with_suffix(".xml"))).bbox
    r, c = int((y0 + y1) / 2 / slide.downsamples[2]), int((x0 + x1) / 2 / slide.downsamples[2])
    tile = slide.read_region(2, r - side // 2, c - side // 2, side, side)
    return torch.from_numpy(tile).permute(2, 0, 1)[None].float() / 255


@pytest.mark.slow
def test_the_shipped_lca_converges_at_its_documented_step_and_says_so():
    """Issue 14, item 8: η is the documented 1/τ (not cut to 1.8/‖ΦᵀΦ‖), stable because
    the dynamics run on the dictionary normalised as a whole; the shipped settings stop on
    their tolerance within the cap, at an energy within 2 % of a far tighter solve (1.6 %
    on this tile, measured), and below what plain LCA reaches in as many iterations."""
    from napari_cpadv.models.weights import resolve

    lca = resolve("sparse", None).lca
    assert lca.step() == pytest.approx(1 / lca.tau)
    # η·‖(gΦ)ᵀ(gΦ)‖ measured independently, by more power iterations on a larger image
    g = lca.gain()
    v = torch.randn(1, 3, 160, 160, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        for _ in range(60):
            w = lca.synthesis(lca.analysis(v))
            norm = float(w.norm() / v.norm())
            v = w / w.norm()
    assert lca.step() * g * g * norm < 1.2  # stable (< 2) with FISTA's margin

    x = _tumour_tile()
    xs, _, _ = lca.standardise(x)
    code = lca.encode(x, trace=True)
    assert code.converged and code.iterations < lca.iterations
    assert code.rel_change < lca.tol and len(code.energy) == code.iterations
    # 600 iterations at a 1e-6 tolerance: 916.44 against 915.77 after 1,500 and 915.76 after
    # 2,334 (where the tolerance stops a 5,000 cap), measured 2026-12-01 and 2026-12-08; the
    # tolerance stops at 930.17
    best = lca.encode(x, iterations=600, tol=1e-6)
    e_code, e_best = float(lca.energy(xs, code.codes)), float(lca.energy(xs, best.codes))
    assert e_best <= e_code <= 1.02 * e_best
    plain = lca.encode(x, iterations=code.iterations, tol=0, momentum=False)
    assert not plain.converged and plain.iterations == code.iterations
    assert float(lca.energy(xs, plain.codes)) > e_code
    report = code.report()
    assert set(report) == {"iterations", "rel_change", "tol", "converged", "sparsity", "energy"}
    assert report["converged"] is True and 0.5 < report["sparsity"] < 1


def test_lca_stops_on_a_tolerance_or_its_cap():
    lca = LCA(atoms=16, size=8, stride=2, lam=0.3, iterations=300, tol=1e-3, seed=2)
    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    loose = lca.encode(x, tol=1e-2)
    tight = lca.encode(x, tol=1e-4)
    assert loose.converged and loose.iterations < tight.iterations
    capped = lca.encode(x, iterations=3, tol=1e-6)
    assert capped.iterations == 3 and not capped.converged
    fixed = lca.encode(x, iterations=7, tol=0)
    assert fixed.iterations == 7 and not fixed.converged
    with pytest.raises(ValueError, match="tol"):
        lca.encode(x, tol=-1)
    with pytest.raises(ValueError, match="tol"):
        LCA(atoms=4, size=8, stride=2, tol=1.5)


@pytest.mark.parametrize("stride", [1, 2, 4, 3])
def test_polyphase_synthesis_is_the_strided_transposed_convolution(stride):
    """The fast synthesis is the same linear map as conv_transpose2d, also when the atom
    side is not a multiple of the stride (stride 3, side 9)."""
    size = 9 if stride in (1, 3) else 8
    lca = LCA(atoms=6, size=size, stride=stride)
    a = torch.randn(2, 6, 5, 7)
    ref = torch.nn.functional.conv_transpose2d(
        a, lca.dictionary.detach(), stride=stride, padding=lca.padding
    )
    torch.testing.assert_close(lca.synthesis(a).detach(), ref, atol=1e-5, rtol=1e-5)

"""Seed 000's latent attack touches only the code's support and reports both successes."""

from __future__ import annotations

import pytest
import torch

from napari_cpadv.attacks.latent import latent_attack
from napari_cpadv.attacks.objectives import CellObjective
from napari_cpadv.attacks.projections import Budget
from napari_cpadv.models.detector import make
from napari_cpadv.progress import drive


@pytest.fixture(scope="module")
def sparse():
    torch.manual_seed(0)
    return make("sparse", atoms=16, size=8, stride=4, iterations=20).eval()


def test_latent_attack_only_moves_the_support_and_keeps_codes_non_negative(sparse):
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        reference = (sparse(x) > 0).float()
        clean = sparse.lca.encode(x).codes
    res = drive(latent_attack(sparse, x, CellObjective(reference), steps=10, step_size=0.1))
    assert (res.codes >= 0).all()
    assert torch.equal(res.codes[clean == 0], clean[clean == 0])
    assert (res.codes != clean).any()
    assert res.latent_success.shape == res.success.shape == (2,)
    assert ((x + res.delta) >= 0).all() and ((x + res.delta) <= 1).all()
    with torch.no_grad():
        attacked = CellObjective(reference)(sparse.head(clean))[0]
    assert (CellObjective(reference)(sparse.head(res.codes))[0] > attacked).all()


def test_latent_delta_is_the_difference_of_decodings_and_can_be_rescaled(sparse):
    x = 0.25 + 0.5 * torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        reference = (sparse(x) > 0).float()
    res = drive(latent_attack(sparse, x, CellObjective(reference), steps=5, step_size=0.1))
    code = sparse.lca.encode(x)
    with torch.no_grad():
        want = sparse.lca.decode(type(code)(res.codes, code.mean, code.std)) - sparse.lca.decode(
            code
        )
    torch.testing.assert_close(res.delta, (x + want).clamp(0, 1) - x, atol=1e-5, rtol=1e-4)
    scaled = drive(
        latent_attack(
            sparse, x, CellObjective(reference), steps=5, step_size=0.1, budget=Budget("l2", 0.5)
        )
    )
    assert scaled.norms["l2_total"][0] == pytest.approx(0.5, rel=1e-3)

"""The attacks on a CUDA GPU: same results as on the CPU, everything kept on the device.

Skipped where torch sees no CUDA device (CI); run on a GPU machine with ``pytest -m gpu``.
"""

from __future__ import annotations

import pytest
import torch

from napari_cpadv.attacks.fgsm import fgsm
from napari_cpadv.attacks.latent import latent_attack
from napari_cpadv.attacks.objectives import CellObjective
from napari_cpadv.attacks.projections import Budget
from napari_cpadv.models.detector import make
from napari_cpadv.progress import drive

from ..conftest import TINY

pytestmark = pytest.mark.gpu


def _tiles() -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (2, 3, 64, 64), generator=g).float() / 255


def test_fgsm_on_cuda_matches_the_cpu_and_stays_on_the_device():
    torch.manual_seed(0)
    dae = make("dae").eval()
    x = _tiles()
    with torch.no_grad():
        ref = (dae(x) > 0).float()
    budget = Budget("l2", 2.0)
    cpu = drive(fgsm(dae, x, CellObjective(ref), steps=5, budget=budget))
    gpu = drive(fgsm(dae.cuda(), x.cuda(), CellObjective(ref.cuda()), steps=5, budget=budget))
    assert gpu.delta.is_cuda and gpu.success.is_cuda
    # sign steps can differ where a gradient is ~0; the rescaled δ stays close
    assert (gpu.delta.cpu() - cpu.delta).abs().mean() < 1e-3
    assert gpu.norms["l2_total"] == pytest.approx(cpu.norms["l2_total"], abs=1e-3)


def test_latent_attack_on_cuda_keeps_codes_on_the_support():
    torch.manual_seed(0)
    sparse = make("sparse", **TINY["sparse"]).eval().cuda()
    x = _tiles().cuda()
    with torch.no_grad():
        ref = (sparse(x) > 0).float()
        clean = sparse.lca.encode(x).codes
    res = drive(latent_attack(sparse, x, CellObjective(ref), steps=5, step_size=0.1))
    assert res.codes.is_cuda and (res.codes >= 0).all()
    assert ((res.codes != clean) & (clean == 0)).sum() == 0

"""Gradient saliency of the three detectors."""

from __future__ import annotations

import torch
from torch import nn

from napari_cpadv.attacks.saliency import saliency
from napari_cpadv.models.detector import make

from ..conftest import TINY


class Linear(nn.Module):
    """tumour logit = Σ w · x: its saliency is max over channels of |w|."""

    name = "linear"

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.randn(1, 3, 8, 8, generator=torch.Generator().manual_seed(0)))

    def tumour_logits(self, x: torch.Tensor) -> torch.Tensor:
        return (x * self.w).flatten(1).sum(1)


def test_saliency_of_a_linear_score_is_its_weights():
    model = Linear()
    x = torch.rand(2, 3, 8, 8)
    s = saliency(model, x)
    assert s.shape == (2, 8, 8)
    torch.testing.assert_close(s, model.w.detach().abs().amax(1).expand(2, 8, 8))


def test_saliency_of_every_detector_is_a_non_negative_map_and_leaves_the_mode():
    torch.manual_seed(0)
    x = torch.rand(1, 3, 64, 64)
    for name in ("dae", "sparse", "resnet18"):
        det = make(name, **TINY[name]).train()
        s = saliency(det, x)
        assert s.shape == (1, 64, 64) and (s >= 0).all() and s.sum() > 0, name
        assert det.training, name  # restored


def test_a_cell_mask_restricts_the_score():
    torch.manual_seed(0)
    dae = make("dae").eval()
    x = torch.rand(1, 3, 64, 64)
    mask = torch.zeros(1, 16, 16)
    mask[:, :4, :4] = 1  # the top-left 16 x 16 pixels' cells
    s = saliency(dae, x, mask=mask)
    # the DAE's receptive field is local: far corners get no gradient
    assert s[0, 48:, 48:].max() == 0 and s[0, :16, :16].max() > 0

"""Issue 29, item 4 (b): the sparse coder attacked in image space by BPDA.

Backward Pass Differentiable Approximation (Athalye et al. 2018): each PGD step runs the
real encoder (the LCA to its own cap and tolerance) on the forward pass, so the loss and
the early stop are the detector's own, and takes the gradient of ``SHORT`` unrolled
iterations on the backward pass (the detector's ``bpda_codes``). Dearer per step than
``unrolled`` (a whole encoding each), and exact in what it scores.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import torch

from napari_cpadv.attacks.unrolled import ThroughLCA

if TYPE_CHECKING:
    from napari_cpadv.models.detector import LatentDetector

SHORT = 10
"""Iterations of the backward pass's unroll: the direction of the codes' first response
to the image, which the remaining iterations refine more than they turn."""


class BPDA(ThroughLCA):
    """``pgd`` on the real encoder's codes with a ``SHORT``-iteration unroll's gradient."""

    name = "bpda"
    summary = (
        "PGD on the sparse coder: the real LCA forward, a short unroll's gradient backward "
        "(BPDA, Athalye et al. 2018)"
    )

    def codes(
        self, detector: LatentDetector, clean: torch.Tensor
    ) -> Callable[[torch.Tensor], torch.Tensor]:
        return lambda x: detector.bpda_codes(x, SHORT)


ATTACK = BPDA()

"""Gradient saliency (seed 001 Fig. 3 and 5): where a detector's tumour score is sensitive.

The map is ``|∂ score / ∂x|``, the largest over the three colour channels, per pixel, with
``score`` the tumour logit of a classifier or the sum of a cell detector's tumour logits
(optionally over a ``mask`` of cells). Comparing the map of an original with that of its
adversarial copy shows where the attack moved the detector's attention.

The sparse coder has no gradient to the image (its encoding is an iterative solver); its
map is the gradient with respect to the code, kept on the code's non-zero support (the
coefficients that are active, as in the latent attack) and taken back to pixels through the
dictionary and the per-image deviation, ``|σ · Φ (∂ score / ∂a ⊙ [a > 0])|``: the linear
response of the reconstruction that the head reads.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

import torch

from napari_cpadv.attacks.engine import eval_mode

if TYPE_CHECKING:
    from napari_cpadv.models.detector import Detector, LatentDetector


def saliency(
    detector: Detector, x: torch.Tensor, *, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """Saliency maps ``(N, H, W)`` of ``detector`` on images ``x`` ``(N, 3, H, W)``."""
    x = x.detach()
    with eval_mode(detector):
        if getattr(detector, "latent", False):  # no gradient to the image: through the code
            return _sparse(cast("LatentDetector", detector), x, mask)
        x = x.clone().requires_grad_(True)
        logits = detector.tumour_logits(x)
        (grad,) = torch.autograd.grad(_score(logits, mask).sum(), x)
    return grad.abs().amax(dim=1)


def _score(logits: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Per-image score: the patch logit, or the sum of cell logits (within ``mask``)."""
    if logits.ndim == 1:
        return logits
    if mask is not None:
        logits = logits * mask.to(logits)
    return logits.flatten(1).sum(1)


def _sparse(detector: LatentDetector, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    with torch.no_grad():
        code = detector.encode(x)
    a = code.codes.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(_score(detector.head(a), mask).sum(), a)
    with torch.no_grad():
        image = detector.synthesise(grad * (code.codes > 0)) * code.std
    return image.abs().amax(dim=1)[..., : x.shape[-2], : x.shape[-1]]

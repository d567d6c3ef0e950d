"""Issue 29, item 4 (a): the sparse coder attacked in image space through its LCA unrolled.

Seed 000 attacks the sparse detector only in its code, because its encoding (an LCA run
to a tolerance) gives the image no gradient, and concludes that it is the more robust
detector. That is the situation Athalye et al. (2018) call obfuscated gradients: the
evidence holds only until the attacker differentiates the loop. This attack runs PGD
(``attacks.pgd``) on a copy of the detector whose encoding is the LCA's dynamics unrolled
with autograd (the detector's ``unrolled_codes``, checkpointed) for as many iterations as
the encoder takes on the clean batch (its codes then equal the encoder's to 1e-6; at 50
iterations they are 76 % of the converged codes' norm away from them); each tile's δ is
then rounded to 8 bits and scored by the real detector, the encoder run to its own
tolerance, as every attack's δ is (``attacks.base``). ``bpda`` is item (b).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any, ClassVar, cast

import torch

from napari_cpadv.attacks.base import Batch
from napari_cpadv.attacks.engine import eval_mode
from napari_cpadv.attacks.pgd import PGD
from napari_cpadv.progress import Work

if TYPE_CHECKING:
    from napari_cpadv.models.detector import Detector, LatentDetector


class ThroughLCA(PGD):
    """PGD whose gradient comes through a differentiable stand-in for the encoder
    (``codes``): a detector with a sparse code offers it (``LatentDetector``)."""

    gradient: ClassVar[bool] = False  # the detector has none: the attack makes its own
    needs_latent: ClassVar[bool] = True
    norms: ClassVar[tuple[str, ...]] = ("l1", "l2", "linf")

    def codes(
        self, detector: LatentDetector, clean: torch.Tensor
    ) -> Callable[[torch.Tensor], torch.Tensor]:
        """The stand-in encoder for a batch whose clean tiles are ``clean``."""
        raise NotImplementedError

    def stand_in(
        self, detector: LatentDetector, clean: torch.Tensor
    ) -> Callable[[torch.Tensor], Any]:
        """The detector with ``codes`` in place of its encoder (the head unchanged)."""
        encode = self.codes(detector, clean)
        return lambda x: detector.head(encode(x))

    def attack_batch(self, job: Batch) -> Work[torch.Tensor]:
        """``PGD``'s batch, on the stand-in."""
        detector = cast("LatentDetector", job.detector)  # check(): needs_latent
        with eval_mode(detector):  # the head's dropout off, as when it is scored
            # PGD only calls what it attacks: the stand-in serves as its detector
            stand_in = cast("Detector", self.stand_in(detector, job.x))
            return (yield from super().attack_batch(replace(job, detector=stand_in)))


class Unrolled(ThroughLCA):
    """``pgd`` through the LCA unrolled with autograd, as long as the encoder runs."""

    name = "unrolled"
    summary = (
        "PGD through the sparse coder's LCA unrolled with autograd (an adaptive attack, "
        "Athalye et al. 2018)"
    )

    def codes(
        self, detector: LatentDetector, clean: torch.Tensor
    ) -> Callable[[torch.Tensor], torch.Tensor]:
        iterations = detector.encode(clean).iterations  # where the encoder's tolerance stops
        return lambda x: detector.unrolled_codes(x, iterations)


ATTACK = Unrolled()

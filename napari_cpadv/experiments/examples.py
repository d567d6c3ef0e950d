"""Seed 001 Figs. 1, 3 and 5: attacked patches as a reader sees them.

``flipped_examples`` attacks a few patches of each class the classifier gets right and
keeps the first of each class whose label the attack flips (Fig. 1: a positive made
negative and a negative made positive). ``panels`` gives, for one patch and its δ, what
Figs. 3 and 5 show: the original, the perturbed image as saved (8 bits), δ amplified so
that its largest channel mean reaches the colour scale's end (the factor is reported),
and the gradient saliency (``attacks.saliency``) before and after.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from napari_cpadv.attacks.projections import Budget
from napari_cpadv.progress import Work, within

if TYPE_CHECKING:
    from napari_cpadv.models.detector import Detector


@torch.no_grad()
def _probability(detector: Detector, x: torch.Tensor) -> float:
    return float(torch.sigmoid(detector.tumour_logits(x))[0])


def panels(detector: Detector, image: np.ndarray, delta: torch.Tensor) -> dict[str, Any]:
    """The pictures of one example: ``image`` ``(S, S, 3)`` uint8, ``delta`` ``(1, 3, S, S)``."""
    from napari_cpadv.attacks.base import quantise
    from napari_cpadv.attacks.saliency import saliency
    from napari_cpadv.device import to_tensor
    from napari_cpadv.experiments.measure import amplification

    device = next(iter(detector.parameters())).device
    x = to_tensor(image[None], device)
    saved = quantise(x, delta.to(device))
    adv = x + saved
    perturbation = saved[0].permute(1, 2, 0).cpu().numpy() * 255  # grey levels
    return {
        "original": image,
        "adversarial": np.rint(adv[0].permute(1, 2, 0).cpu().numpy() * 255).astype(np.uint8),
        "perturbation": perturbation,
        "amplification": amplification(perturbation),
        "saliency_before": saliency(detector, x)[0].cpu().numpy(),
        "saliency_after": saliency(detector, adv)[0].cpu().numpy(),
        "probability_before": _probability(detector, x),
        "probability_after": _probability(detector, adv),
    }


def flipped_examples(
    detector: Detector,
    images: np.ndarray,
    labels: np.ndarray,
    *,
    budget: Budget,
    steps: int = 100,
    per_class: int = 4,
    seed: int = 0,
    device: torch.device | str = "cpu",
) -> Work[list[dict[str, Any]]]:
    """One example of each class (positive first) whose correct label PGD flips within
    ``budget``, among the first ``per_class`` right patches of the class; their panels."""
    from napari_cpadv.attacks.objectives import ClassObjective, logits_of
    from napari_cpadv.attacks.pgd import pgd
    from napari_cpadv.device import to_tensor

    detector.to(device).eval()
    x = to_tensor(images, device)
    y = torch.from_numpy(np.asarray(labels, dtype=np.int64)).to(device)
    right = logits_of(detector, x, torch.zeros_like(x)).argmax(1) == y
    out: list[dict[str, Any]] = []
    for k, cls in enumerate((1, 0)):
        idx = torch.nonzero(right & (y == cls))[:per_class, 0]
        if len(idx) == 0:
            continue
        work = pgd(
            detector,
            x[idx],
            ClassObjective(y[idx]),
            budget=budget,
            steps=steps,
            constraint="seed001",
            seed=seed,
        )
        res = yield from within(work, k / 2, (k + 1) / 2, label=cls)
        hits = torch.nonzero(res.success)[:, 0]
        if len(hits):
            i = int(hits[0])
            example = panels(detector, images[int(idx[i])], res.delta[i : i + 1])
            out.append({"label": cls, "patch": int(idx[i]), **example})
    return out


def universal_example(model: Any, held: Any, delta: Any, folder: Path) -> dict[str, Any]:
    """Fig. 5: the first held-out positive the universal δ flips (the first positive when
    it flips none, which the figure's probabilities then show)."""
    import torch

    from napari_cpadv.attacks.base import quantise
    from napari_cpadv.device import to_tensor

    patches, labels = held.patch_labels()
    positives = np.flatnonzero(labels == 1)
    device = next(iter(model.parameters())).device
    x = to_tensor(patches.images[positives], device)
    with torch.no_grad():  # one pass each way, then the pictures of the one chosen
        before = model.tumour_logits(x)
        after = model.tumour_logits(x + quantise(x, delta.to(device).expand_as(x)))
    flipped = torch.nonzero((before > 0) & (after <= 0))[:, 0]
    first = int(positives[int(flipped[0])] if len(flipped) else positives[0])
    example = panels(model, patches.images[first], delta)
    return save_examples(folder, [{"label": 1, "patch": first, **example}])[0]


def save_examples(folder: Path, found: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each example's pictures as PNG files in ``folder``; their names and scalars."""
    from PIL import Image

    out = []
    for k, ex in enumerate(found):
        names = {}
        for key in ("original", "adversarial"):
            names[key] = f"example{k}_{key}.png"
            Image.fromarray(ex[key]).save(folder / names[key])
        for key in ("perturbation", "saliency_before", "saliency_after"):
            names[key] = f"example{k}_{key}.npy"
            np.save(folder / names[key], np.asarray(ex[key], np.float32))
        scalars = {k2: v for k2, v in ex.items() if isinstance(v, int | float)}
        out.append({"files": names, **scalars})
    return out

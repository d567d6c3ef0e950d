"""Seed 001 Fig. 2a: the classifier's penultimate features in two dimensions (UMAP), the
clean and the attacked patches, and the track of one patch through the attack.

Clean held-out patches are true positives and true negatives in the paper's sense:
unperturbed inputs *classified* positive or negative. Each is attacked (PGD under the
given budget, against its predicted class) and the attacks that flip it give the
adversarial negatives and positives. One positive patch is then attacked again with its
features recorded at every forward pass of the attack loop, i.e. one point per
optimisation step, until it is classified negative with ``confidence`` (a margin in
logits). UMAP (umap-learn) is fitted on the clean and adversarial features; the track is
placed by the fitted map's ``transform``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from napari_cpadv.attacks.projections import Budget
from napari_cpadv.progress import Work, within

if TYPE_CHECKING:
    from napari_cpadv.models.detector import Detector


def _features_of(detector: Detector) -> Any:
    """The classifier's penultimate features (``features``) and its last layer (``fc``)."""
    if not (hasattr(detector, "features") and hasattr(detector, "fc")):
        raise ValueError(
            f"{detector.name} has no penultimate features: Fig. 2a needs the patch classifier"
        )
    return detector.features, detector.fc


@torch.no_grad()
def _embed(detector: Detector, x: torch.Tensor, batch: int) -> np.ndarray:
    features, fc = _features_of(detector)
    if len(x) == 0:  # no attack flipped a patch: no adversarial point
        return np.zeros((0, fc.in_features), np.float32)
    return torch.cat([features(x[i : i + batch]) for i in range(0, len(x), batch)]).cpu().numpy()


def attack_track(
    detector: Detector,
    x: torch.Tensor,
    label: int,
    *,
    budget: Budget,
    steps: int,
    confidence: float = 2.0,
    seed: int = 0,
) -> Work[dict[str, Any]]:
    """Attack one patch ``x`` ``(1, 3, S, S)`` of class ``label``, recording its features and
    tumour probability at every step; returns them with the attack's outcome."""
    from napari_cpadv.attacks.objectives import ClassObjective
    from napari_cpadv.attacks.pgd import pgd

    features, fc = _features_of(detector)
    track: list[np.ndarray] = []
    probability: list[float] = []

    def recorded(z: torch.Tensor) -> torch.Tensor:
        f = features(z)
        logits = fc(f)
        track.append(f.detach()[0].cpu().numpy())
        probability.append(float(torch.softmax(logits.detach(), 1)[0, 1]))
        return logits

    objective = ClassObjective(torch.tensor([label], device=x.device), confidence=confidence)
    res = yield from pgd(
        recorded, x, objective, budget=budget, steps=steps, constraint="seed001", seed=seed
    )
    return {
        "features": np.stack(track),
        "probability": probability,
        "success": bool(res.success[0]),
        "steps": res.steps,
    }


def umap_with_track(
    detector: Detector,
    images: np.ndarray,
    *,
    budget: Budget,
    steps: int = 100,
    confidence: float = 2.0,
    seed: int = 0,
    batch: int = 16,
    device: torch.device | str = "cpu",
) -> Work[dict[str, Any]]:
    """The points of Fig. 2a for ``images`` ``(N, S, S, 3)`` uint8: each point's group
    (``TP``, ``TN``, ``adv+``, ``adv-``) and 2-D position, and the track's positions."""
    import umap

    from napari_cpadv.attacks.objectives import ClassObjective
    from napari_cpadv.device import to_tensor

    detector.to(device).eval()
    x = to_tensor(images, device)
    clean_f = _embed(detector, x, batch)  # once: the class and the UMAP points read them
    with torch.no_grad():
        predicted = _features_of(detector)[1](torch.from_numpy(clean_f).to(x.device)).argmax(1)
    if not (predicted == 1).any():
        raise ValueError("no patch is classified positive: the attack's track needs one")
    adv, flipped = yield from within(
        _attacked(detector, x, ClassObjective(predicted), budget, steps, seed, batch), 0, 0.8
    )
    first = int(torch.nonzero(predicted == 1)[0])
    work_track = attack_track(
        detector,
        x[first : first + 1],
        1,
        budget=budget,
        steps=steps,
        confidence=confidence,
        seed=seed,
    )
    track = yield from within(work_track, 0.8, 0.9)
    adv_f = _embed(detector, adv, batch)
    groups = np.array(
        [("TP" if p == 1 else "TN") for p in predicted.tolist()]
        + [("adv+" if p == 0 else "adv-") for p in predicted[flipped].tolist()]
    )
    points = np.concatenate([clean_f, adv_f])
    mapper = umap.UMAP(n_neighbors=min(15, len(points) - 1), random_state=seed).fit(points)
    return {
        "groups": groups.tolist(),
        "embedding": mapper.embedding_.tolist(),
        "track": mapper.transform(track["features"]).tolist(),
        "track_probability": track["probability"],
        "track_success": track["success"],
        "track_patch": first,
        "attacked": len(x),
        "flipped": int(flipped.sum()),
    }


def _attacked(
    detector: Detector,
    x: torch.Tensor,
    objective: Any,
    budget: Budget,
    steps: int,
    seed: int,
    batch: int,
) -> Work[tuple[torch.Tensor, torch.Tensor]]:
    """Every patch attacked against its predicted class: the patches it flipped, and which
    those were."""
    from napari_cpadv.experiments.norms import pgd_in_batches

    delta, done = yield from pgd_in_batches(
        detector, x, objective, budget=budget, steps=steps, seed=seed, batch=batch
    )
    return (x + delta).clamp(0, 1)[done.to(x.device)], done

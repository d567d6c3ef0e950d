"""A universal perturbation learnt on the tiles of some slides and scored on held-out
ones (seed 001), against Gaussian noise of the same norm."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from napari_cpadv.attacks.base import AttackSpec, quantise, score
from napari_cpadv.attacks.objectives import CellObjective, ClassObjective, Objective
from napari_cpadv.attacks.projections import norms
from napari_cpadv.attacks.universal import ATTACK as UNIVERSAL
from napari_cpadv.experiments.craft import logits_aucpr
from napari_cpadv.models.detector import Detector
from napari_cpadv.progress import Work


def tile_set_inputs(
    detector: Detector, tiles: Any, *, positives: bool = False
) -> tuple[torch.Tensor, np.ndarray | None, torch.Tensor]:
    """Images, cell labels (cell detectors) and targets of a ``models.train.TileSet``.

    A classifier is attacked against each patch's true label (seed 001's nucleus rule);
    a cell detector against the tile's cell mask. ``positives`` keeps only tumour patches
    (a classifier) or tiles with tumour cells (a cell detector).
    """
    from napari_cpadv.device import to_tensor

    if detector.output == "classes":
        kept, y = tiles.patch_labels()
        keep = y == 1 if positives else np.ones(len(y), bool)
        x = to_tensor(kept.images[keep])
        return x, None, torch.from_numpy(y[keep])
    keep = tiles.tumour_cells > 0 if positives else np.ones(len(tiles), bool)
    masks = tiles.masks[keep].astype(np.uint8)
    return to_tensor(tiles.images[keep]), masks, torch.from_numpy(masks).float()


def _target_objective(detector: Detector, target: torch.Tensor) -> Objective:
    if detector.output == "classes":
        return ClassObjective(target)
    return CellObjective(target)


def universal_study(
    detector: Detector,
    train: Any,
    held_out: Any,
    spec: AttackSpec,
    *,
    positives: bool = True,
    device: Any = "cpu",
    batch: int = 16,
) -> Work[tuple[torch.Tensor, dict[str, Any]]]:
    """Learn one δ on the ``train`` tiles and score it on the ``held_out`` tiles (two
    ``models.train.TileSet``), against Gaussian noise of the same L2 norm.

    Success is counted on every scored image and, apart, on those the detector gets right
    when clean (a perturbation cannot take credit for the detector's own mistakes).
    Returns δ ``(1, 3, S, S)`` and the report.
    """
    from napari_cpadv.attacks.noise import noise_like

    if spec.attack != "universal":
        raise ValueError(f"a universal study runs the universal attack, not {spec.attack}")
    started = time.perf_counter()
    detector.to(device).eval()
    x, _, target = tile_set_inputs(detector, train, positives=positives)
    xh, labels_h, target_h = tile_set_inputs(detector, held_out, positives=positives)
    if len(x) == 0 or len(xh) == 0:
        raise ValueError(
            f"{len(x)} training and {len(xh)} held-out images"
            + (" with tumour" if positives else "")
            + ": both sets need some"
        )
    if x.shape[1:] != xh.shape[1:]:
        raise ValueError(f"training tiles are {tuple(x.shape[2:])}, held-out {tuple(xh.shape[2:])}")
    x, xh = x.to(device), xh.to(device)
    obj, obj_h = _target_objective(detector, target), _target_objective(detector, target_h)
    res = yield from UNIVERSAL.learn(detector, x, obj, spec, batch)
    delta = res.delta
    trained = score(detector, x, quantise(x, delta.expand_as(x)), obj)
    dh = quantise(xh, delta.expand_as(xh))
    clean_h = score(detector, xh, torch.zeros_like(xh), obj_h)
    attacked = score(detector, xh, dh, obj_h)
    noise = score(detector, xh, quantise(xh, noise_like(dh, xh, seed=spec.seed)), obj_h)
    right = ~clean_h.success

    def rate(s: torch.Tensor, among: torch.Tensor | None = None) -> float:
        s = s if among is None else s[among]
        return float(s.float().mean()) if len(s) else float("nan")

    report: dict[str, Any] = {
        "detector": detector.name,
        "attack": "universal",
        "budget": {"norm": spec.budget.norm, "value": spec.budget.value, "unit": spec.budget.unit},
        "epochs": spec.epochs,
        "batch": batch,
        "seed": spec.seed,
        "device": str(device),
        "positives_only": positives,
        "norms": norms(delta),
        "losses": res.losses,
        "train": {
            "images": len(x),
            "success_rate": trained.success_rate,
            "clean_error": rate(score(detector, x, torch.zeros_like(x), obj).success),
        },
        "held_out": {
            "images": len(xh),
            "clean_error": rate(clean_h.success),
            "success_rate": attacked.success_rate,
            "success_rate_among_right": rate(attacked.success, right),
            "noise_success_rate": noise.success_rate,
            "noise_success_rate_among_right": rate(noise.success, right),
        },
        "seconds": time.perf_counter() - started,
    }
    if labels_h is not None and labels_h.any():
        report["held_out"]["aucpr"] = {
            "clean": logits_aucpr(clean_h.logits, labels_h),
            "universal": logits_aucpr(attacked.logits, labels_h),
        }
    return delta, report

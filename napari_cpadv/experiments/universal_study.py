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
from napari_cpadv.experiments.scoring import logits_aucpr
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
    batch: int = 1,
) -> Work[tuple[torch.Tensor, dict[str, Any]]]:
    """Learn one δ on the ``train`` tiles and score it on the ``held_out`` tiles (two
    ``models.train.TileSet``), against Gaussian noise of the same L2 norm.

    Success is counted on every scored image and, apart, on those the detector gets right
    when clean (a perturbation cannot take credit for the detector's own mistakes).
    ``batch`` is 1 by default: seed 001 §2.2 updates δ after each training example.
    Returns δ ``(1, 3, S, S)`` and the report.
    """
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
    trained = score(detector, x, quantise(x, res.delta.expand_as(x)), obj)
    report: dict[str, Any] = {
        "detector": detector.name,
        "attack": "universal",
        "budget": {"norm": spec.budget.norm, "value": spec.budget.value, "unit": spec.budget.unit},
        "epochs": spec.epochs,
        "batch": batch,
        "seed": spec.seed,
        "device": str(device),
        "positives_only": positives,
        "norms": norms(res.delta),
        "losses": res.losses,
        "train": {
            "images": len(x),
            "success_rate": trained.success_rate,
            "clean_error": _rate(score(detector, x, torch.zeros_like(x), obj).success),
        },
        "held_out": _held_out(detector, xh, labels_h, obj_h, res.delta, spec.seed),
        "seconds": time.perf_counter() - started,
    }
    return res.delta, report


def _rate(s: torch.Tensor, among: torch.Tensor | None = None) -> float:
    s = s if among is None else s[among]
    return float(s.float().mean()) if len(s) else float("nan")


def _held_out(
    detector: Detector,
    xh: torch.Tensor,
    labels: np.ndarray | None,
    objective: Objective,
    delta: torch.Tensor,
    seed: int,
) -> dict[str, Any]:
    """The δ on the held-out images, against noise of its norm; success also among the
    images the detector gets right when clean; cell AUC-PR where there are tumour cells."""
    from napari_cpadv.attacks.noise import noise_like

    dh = quantise(xh, delta.expand_as(xh))
    clean = score(detector, xh, torch.zeros_like(xh), objective)
    attacked = score(detector, xh, dh, objective)
    noise = score(detector, xh, quantise(xh, noise_like(dh, xh, seed=seed)), objective)
    right = ~clean.success
    out: dict[str, Any] = {
        "images": len(xh),
        "clean_error": _rate(clean.success),
        "success_rate": attacked.success_rate,
        "success_rate_among_right": _rate(attacked.success, right),
        "noise_success_rate": noise.success_rate,
        "noise_success_rate_among_right": _rate(noise.success, right),
    }
    if labels is not None and labels.any():
        out["aucpr"] = {
            "clean": logits_aucpr(clean.logits, labels),
            "universal": logits_aucpr(attacked.logits, labels),
        }
    return out

"""Attack a region of a slide tile by tile and store the result as an adversarial slide.

The region (level-0 ``x, y, width, height``) is cut into tiles of the chosen level; each
tile is attacked on its own (as the seeds attack 512x512 tiles and 224x224 patches), the
adversarial tile is rounded to 8 bits and written into a delta slide, and the report
gives the achieved norms (after rounding) in both units, success, and, when annotations
are given, the cell-level AUC-PR of every detector before and after.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch

from napari_cpadv.attacks.projections import Budget, norms
from napari_cpadv.progress import Progress, Work

AttackName = Literal["fgsm", "pgd", "latent", "noise"]
ATTACKS: tuple[AttackName, ...] = ("fgsm", "pgd", "latent", "noise")


@dataclass(frozen=True)
class RegionAttack:
    """What to run: attack, budget, steps, level, tile side and seed."""

    attack: AttackName
    budget: Budget
    level: int
    steps: int = 100
    tile: int = 512
    seed: int = 0


def _objective(detector: Any, x: torch.Tensor, reference: np.ndarray | None) -> Any:
    from napari_cpadv.attacks.objectives import CellObjective, ClassObjective

    with torch.no_grad():
        clean = detector(x)
    if detector.output == "classes":
        return ClassObjective(clean.argmax(1))
    ref = (
        torch.from_numpy(reference[None]).float() if reference is not None else (clean > 0).float()
    )
    return CellObjective(ref)


def _run(detector: Any, x: torch.Tensor, objective: Any, spec: RegionAttack) -> Work[torch.Tensor]:
    from napari_cpadv.attacks.fgsm import fgsm
    from napari_cpadv.attacks.latent import latent_attack
    from napari_cpadv.attacks.noise import noise_like
    from napari_cpadv.attacks.pgd import pgd
    from napari_cpadv.attacks.projections import rescale_l2_clipped

    if spec.attack == "fgsm":
        res = yield from fgsm(
            detector, x, objective, steps=spec.steps, budget=spec.budget, seed=spec.seed
        )
        return res.delta
    if spec.attack == "pgd":
        res = yield from pgd(
            detector, x, objective, budget=spec.budget, steps=spec.steps, seed=spec.seed
        )
        return res.delta
    if spec.attack == "latent":
        if detector.name != "sparse":
            raise ValueError("the latent attack needs the sparse-coding detector")
        lat = yield from latent_attack(
            detector, x, objective, steps=spec.steps, budget=spec.budget, seed=spec.seed
        )
        return lat.delta
    if spec.budget.norm != "l2":
        raise ValueError("the noise control is scaled to an L2 budget")
    z = noise_like(torch.ones_like(x), x, seed=spec.seed)  # a direction; scaled next
    return rescale_l2_clipped(z, x, spec.budget.total(tuple(x.shape[1:])))


def attack_region(
    slide_path: str | os.PathLike[str],
    detector: Any,
    spec: RegionAttack,
    *,
    region: tuple[int, int, int, int],
    out: str | os.PathLike[str],
    annotations: Any = None,
    device: Any = "cpu",
) -> Work[dict[str, Any]]:
    """Attack ``region`` (level-0 ``x, y, w, h``) and write ``out`` (a ``.delta.zarr``).

    Returns the report (JSON-ready).
    """
    from napari_cpadv.annotations.raster import cell_grid
    from napari_cpadv.geometry import Grid
    from napari_cpadv.slide.delta import apply, create_delta

    started = time.perf_counter()
    delta_slide = create_delta(slide_path, out)
    ds = delta_slide.downsamples[spec.level]
    g0, g = delta_slide.geometry[0], delta_slide.geometry[spec.level]
    grid = Grid.of_level((g0.rows, g0.cols), (g.rows, g.cols))
    side = max(detector.multiple, spec.tile // detector.multiple * detector.multiple)
    x0, y0, w, h = region
    r0, c0 = int(y0 / ds) // side * side, int(x0 / ds) // side * side
    r1, c1 = min(g.rows, math.ceil((y0 + h) / ds)), min(g.cols, math.ceil((x0 + w) / ds))
    tiles = [(r, c) for r in range(r0, r1 - side + 1, side) for c in range(c0, c1 - side + 1, side)]
    if not tiles:
        raise ValueError(f"the region holds no whole {side}-pixel tile of level {spec.level}")
    detector.to(device).eval()
    all_norms: list[dict[str, list[float]]] = []
    successes = []
    for k, (r, c) in enumerate(tiles):
        img = delta_slide.read_region(spec.level, r, c, side, side)
        x = torch.from_numpy(img).permute(2, 0, 1)[None].float().div(255).to(device)
        reference = None
        if annotations is not None and detector.output == "cells":
            reference = cell_grid(annotations, grid.window(r, c, side, side))[1]
        objective = _objective(detector, x, reference)
        d = yield from _run(detector, x, objective, spec)
        adv = (x + d).clamp(0, 1).mul(255).round().byte()[0].permute(1, 2, 0).cpu().numpy()
        xa = torch.from_numpy(adv).permute(2, 0, 1)[None].float().div(255).to(device)
        all_norms.append(norms(xa - x))  # after rounding to 8 bits
        with torch.no_grad():
            successes.append(bool(objective(detector(xa))[1][0]))
        apply(delta_slide, spec.level, r, c, adv)
        yield Progress(k + 1, len(tiles), {"tile": [r, c]})
    report: dict[str, Any] = {
        "slide": str(slide_path),
        "delta": str(out),
        "detector": detector.name,
        "attack": spec.attack,
        "budget": {"norm": spec.budget.norm, "value": spec.budget.value, "unit": spec.budget.unit},
        "level": spec.level,
        "tile": side,
        "tiles": len(tiles),
        "steps": spec.steps,
        "seed": spec.seed,
        "device": str(device),
        "success_rate": float(np.mean(successes)),
        "norms": {key: [n[key][0] for n in all_norms] for key in all_norms[0]},
        "seconds": time.perf_counter() - started,
    }
    return report

"""Seed 001 §2.3: the cases of the pathologist study, chosen as the paper chose them.

Twenty positive test patches that the classifier gets right and that the attack flips
(PGD under L∞ with seed 001's constraint) are written as ``<case>_original.png`` and
``<case>_adversarial.png`` pairs with a ``truth.json`` of tumour-nucleus counts: the
folder ``cpadv study create`` builds a blinded study from (each pair shown twice with
``--preset seed001``). Readers, not this command, give Table 1b's numbers.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from napari_cpadv.progress import Work, within

if TYPE_CHECKING:
    from napari_cpadv.models.detector import Detector


def study_cases(
    detector: Detector,
    images: np.ndarray,
    labels: np.ndarray,
    folder: Path,
    *,
    cases: int = 20,
    budget_linf: float = 2.0,
    steps: int = 100,
    seed: int = 0,
    batch: int = 16,
    device: torch.device | str = "cpu",
) -> Work[dict[str, Any]]:
    """Write up to ``cases`` pairs into ``folder/pairs``; returns what was chosen and the
    command that builds the study."""
    from napari_cpadv.attacks.base import quantise
    from napari_cpadv.attacks.objectives import ClassObjective, logits_of
    from napari_cpadv.attacks.pgd import pgd
    from napari_cpadv.device import to_tensor
    from napari_cpadv.experiments.norms import budget_of

    detector.to(device).eval()
    positives = np.flatnonzero(np.asarray(labels) == 1)
    pairs = folder / "pairs"
    pairs.mkdir()
    chosen: list[int] = []
    truth: dict[str, int] = {}
    for start in range(0, len(positives), batch):
        if len(chosen) >= cases:
            break
        idx = positives[start : start + batch]
        x = to_tensor(images[idx], device)
        right = logits_of(detector, x, torch.zeros_like(x)).argmax(1) == 1
        y = torch.ones(len(idx), dtype=torch.long, device=x.device)
        work = pgd(
            detector,
            x,
            ClassObjective(y),
            budget=budget_of("linf", budget_linf),
            steps=steps,
            constraint="seed001",
            seed=seed,
        )
        res = yield from within(work, start / len(positives), (start + len(idx)) / len(positives))
        adv = (x + quantise(x, res.delta)).clamp(0, 1)
        saved = logits_of(detector, adv, torch.zeros_like(adv)).argmax(1) == 0  # flipped as saved
        for k in torch.nonzero(right & saved)[:, 0].tolist()[: cases - len(chosen)]:
            case = f"case{len(chosen) + 1:02d}"
            _write_pair(pairs, case, images[idx[k]], adv[k])
            truth[case] = True
            chosen.append(int(idx[k]))
    (pairs / "truth.json").write_text(json.dumps(truth, indent=1) + "\n")
    return {
        "cases": len(chosen),
        "wanted": cases,
        "test_patches": chosen,
        "budget_linf": budget_linf,
        "pairs": "pairs",
        "build": "cpadv study create seed001/study/pairs --preset seed001 --out S --readers R",
    }


def _write_pair(folder: Path, case: str, original: np.ndarray, adversarial: torch.Tensor) -> None:
    """``case_original.png`` and ``case_adversarial.png`` (the 8-bit image the model saw)."""
    from PIL import Image

    Image.fromarray(original).save(folder / f"{case}_original.png")
    pixels = np.rint(adversarial.permute(1, 2, 0).cpu().numpy() * 255).astype(np.uint8)
    Image.fromarray(pixels).save(folder / f"{case}_adversarial.png")

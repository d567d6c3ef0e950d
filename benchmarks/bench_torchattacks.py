"""Issue 5: our PGD-L∞ against torchattacks' PGD, same model, batch, steps and step size.

torchattacks lives in its own environment (it declares torchvision, which has no CPU build
on the registry here, but none of its modules imports it), made by ``make
bench-torchattacks``: a venv with torch 2.13 CPU, numpy, scipy, requests, tqdm and
safetensors, then ``torchattacks==3.5.1 --no-deps``. This script runs in that environment
with the repository on ``PYTHONPATH`` so that both attacks drive the very same shipped
ResNet-18 in one process. Repeats are interleaved; medians are reported, and the two
adversarial batches are compared (they must agree: same start, same steps, same rule).

Our loop scores the final δ with one more forward pass (no graph) so that it can report
success and loss; torchattacks returns the images unscored. The third timing adds that
one forward to torchattacks, which is what a caller needs to learn which examples flipped.
"""

from __future__ import annotations

import json
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
import torchattacks

from napari_cpadv.attacks.engine import attack
from napari_cpadv.attacks.objectives import ClassObjective
from napari_cpadv.attacks.projections import Budget
from napari_cpadv.models.weights import load
from napari_cpadv.progress import drive

WEIGHTS = Path(__file__).resolve().parents[1] / "sample_data" / "weights" / "resnet18.safetensors"


def main(batch: int = 16, size: int = 224, steps: int = 10, repeats: int = 15) -> dict:
    torch.manual_seed(0)
    model = load(WEIGHTS, expect="resnet18").eval()
    x = torch.rand(batch, 3, size, size)
    with torch.no_grad():
        labels = model(x).argmax(1)
    eps, alpha = 8 / 255, 1 / 255
    theirs = torchattacks.PGD(model, eps=eps, alpha=alpha, steps=steps, random_start=False)

    def ours() -> torch.Tensor:
        work = attack(
            model,
            x,
            ClassObjective(labels),
            budget=Budget("linf", eps),
            steps=steps,
            step_size=alpha,
            rule="sign",
            early_stop=False,
        )
        return x + drive(work).delta

    def theirs_scored() -> torch.Tensor:
        adv = theirs(x, labels)
        with torch.no_grad():  # what a caller needs to learn which examples flipped
            model(adv).argmax(1)
        return adv

    a, b = ours(), theirs(x, labels)  # warm up, and the agreement check
    runs: dict[str, list[float]] = {"ours": [], "theirs": [], "theirs_scored": []}
    order = [
        ("ours", ours),
        ("theirs", lambda: theirs(x, labels)),
        ("theirs_scored", theirs_scored),
    ]
    for i in range(repeats):
        for name, run in order if i % 2 == 0 else order[::-1]:  # alternate against drift
            t = time.perf_counter()
            run()
            runs[name].append(time.perf_counter() - t)
    mo, mt, ms = (statistics.median(runs[k]) for k in ("ours", "theirs", "theirs_scored"))
    return {
        "machine": (
            f"{platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__},"
            f" torchattacks {torchattacks.__version__}"
        ),
        "date": time.strftime("%Y-%m-%d"),
        "device": str(x.device),
        "batch": [batch, 3, size, size],
        "steps": steps,
        "eps": eps,
        "alpha": alpha,
        "ours_s": mo,
        "torchattacks_s": mt,
        "ratio": mo / mt,
        "torchattacks_plus_scoring_forward_s": ms,
        "ratio_to_scored": mo / ms,
        "max_abs_difference_of_results": float((a - b).abs().max()),
        "fraction_pixels_differing": float(((a - b).abs() > 1e-6).float().mean()),
    }


if __name__ == "__main__":
    args = [int(v) for v in sys.argv[1:]]
    print(json.dumps(main(*args), indent=2))

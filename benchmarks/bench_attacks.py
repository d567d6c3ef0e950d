"""Issue 5: the attack loop's overhead over the model's own forward + backward.

An attack of N steps against N x (one forward + one backward of the same model on the
same batch, gradient to the input), side by side in one process, interleaved repeats,
medians. The loop adds the objective, the step rule and the projection; the target is an
overhead of at most 1.10x.
"""

from __future__ import annotations

import json
import platform
import statistics
import time

import torch

from napari_cpadv.attacks.engine import attack
from napari_cpadv.attacks.objectives import CellObjective, ClassObjective
from napari_cpadv.attacks.projections import Budget
from napari_cpadv.models.weights import resolve
from napari_cpadv.progress import drive


def bare(model, x, steps: int) -> None:
    for _ in range(steps):
        d = torch.zeros_like(x, requires_grad=True)
        torch.autograd.grad(model(x + d).float().sum(), d)


def _median_pair(first, second, repeats: int) -> tuple[float, float]:
    first(), second()  # warm up
    t_a, t_b = [], []
    for _ in range(repeats):
        t = time.perf_counter()
        first()
        t_a.append(time.perf_counter() - t)
        t = time.perf_counter()
        second()
        t_b.append(time.perf_counter() - t)
    return statistics.median(t_a), statistics.median(t_b)


def compare(
    name: str, model, x, objective, budget, rule, steps: int = 10, repeats: int = 5
) -> dict:
    def run() -> None:
        work = attack(
            model,
            x,
            objective,
            budget=budget,
            steps=steps,
            step_size=1 / 255,
            rule=rule,
            early_stop=False,
        )
        drive(work)

    a, r = _median_pair(run, lambda: bare(model, x, steps), repeats)
    return {
        "model": name,
        "batch": list(x.shape),
        "steps": steps,
        "attack_s": a,
        "fwd_bwd_s": r,
        "overhead": a / r,
    }


def main() -> None:
    torch.manual_seed(0)
    dae = resolve("dae", None).eval()
    x = torch.rand(2, 3, 256, 256)
    with torch.no_grad():
        ref = (dae(x) > 0).float()
    rows = [compare("dae", dae, x, CellObjective(ref), Budget("l2", 25.0), "l2")]
    rows.append(
        compare("dae (sign, L∞)", dae, x, CellObjective(ref), Budget("linf", 8 / 255), "sign")
    )
    resnet = resolve("resnet18", None).eval()
    p = torch.rand(16, 3, 224, 224)
    with torch.no_grad():
        labels = resnet(p).argmax(1)
    rows.append(
        compare("resnet18", resnet, p, ClassObjective(labels), Budget("linf", 8 / 255), "sign")
    )
    machine = f"{platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}"
    report = {"machine": machine, "date": time.strftime("%Y-%m-%d"), "rows": rows}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()

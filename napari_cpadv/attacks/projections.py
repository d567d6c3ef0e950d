"""Budgets, norms and projections of perturbations δ, per example of a batch.

Images are ``(N, C, H, W)`` in [0, 1]; every function treats each of the N examples on its
own and works on the tensor's device. A pixel is a spatial position (its C channels
together), which is what seed 001's L0 budget counts.

Budgets name their norm and unit (DESIGN.md):

* ``total``: the norm of δ over the whole example, [0, 1] scale (seed 000's L2 = 25 on a
  512x512x3 tile); for L0 the number of pixels.
* ``per_pixel``: seed 001's units: L1 as the mean absolute difference, L2 as the
  root-mean-square difference, L∞ in steps of 1/255, L0 as the fraction of pixels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch

Norm = Literal["l0", "l1", "l2", "linf", "none"]
Unit = Literal["total", "per_pixel"]
NORMS: tuple[Norm, ...] = ("l0", "l1", "l2", "linf", "none")


@dataclass(frozen=True)
class Budget:
    """How far δ may go: ``value`` in ``unit`` of ``norm`` (``none``: unconstrained)."""

    norm: Norm
    value: float
    unit: Unit = "total"

    def __post_init__(self) -> None:
        if self.norm not in NORMS:
            raise ValueError(f"unknown norm {self.norm!r}; choose one of {', '.join(NORMS)}")
        if self.unit not in ("total", "per_pixel"):
            raise ValueError(f"unknown budget unit {self.unit!r}: 'total' or 'per_pixel'")
        if not math.isfinite(self.value) or self.value < 0:
            raise ValueError(f"a budget must be a finite number >= 0, got {self.value}")
        if self.norm == "l0" and self.unit == "per_pixel" and self.value > 1:
            raise ValueError(f"an L0 budget per pixel is a fraction of pixels, got {self.value}")

    def norm_key(self) -> str:
        """The key of :func:`norms` that measures this budget (in its own unit)."""
        per = self.unit == "per_pixel"
        return {
            "l0": "l0_fraction" if per else "l0_pixels",
            "l1": "l1_mad" if per else "l1_total",
            "l2": "l2_rms" if per else "l2_total",
            "linf": "linf_255",
            "none": "l2_total",
        }[self.norm]

    def total(self, shape: tuple[int, ...]) -> float:
        """The budget as a total for one example of ``shape`` ``(C, H, W)``."""
        c, h, w = shape[-3:]
        if self.unit == "total" or self.norm == "none":
            return self.value
        if self.norm == "l1":
            return self.value * c * h * w
        if self.norm == "l2":
            return self.value * math.sqrt(c * h * w)
        if self.norm == "linf":
            return self.value / 255
        return math.floor(self.value * h * w + 1e-9)  # l0: a fraction of the pixels


def norms(delta: torch.Tensor) -> dict[str, list[float]]:
    """Achieved norms of each example in both units (see the module's docstring)."""
    n = delta.shape[0]
    c, h, w = delta.shape[1:]
    flat = delta.detach().reshape(n, -1).double()
    changed = (delta.detach().reshape(n, c, h * w) != 0).any(dim=1).sum(dim=1).double()
    magnitude = flat.abs()
    l1 = magnitude.sum(1)
    l2 = flat.norm(dim=1)
    linf = magnitude.amax(1) if flat.shape[1] else torch.zeros(n, dtype=torch.float64)
    size = c * h * w
    return {
        "l0_pixels": changed.tolist(),
        "l0_fraction": (changed / (h * w)).tolist(),
        "l1_total": l1.tolist(),
        "l1_mad": (l1 / size).tolist(),
        "l2_total": l2.tolist(),
        "l2_rms": (l2 / math.sqrt(size)).tolist(),
        "linf": linf.tolist(),
        "linf_255": (linf * 255).tolist(),
    }


def box(delta: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """The nearest δ with ``x + δ`` in [0, 1]."""
    return (x + delta).clamp(0, 1) - x


def linf(delta: torch.Tensor, eps: float) -> torch.Tensor:
    """Nearest point of the L∞ ball of radius ``eps`` (a clip)."""
    return delta.clamp(-eps, eps)


def l2(delta: torch.Tensor, eps: float) -> torch.Tensor:
    """Nearest point of the L2 ball: δ scaled down to norm ``eps`` when it is longer."""
    norm = delta.reshape(delta.shape[0], -1).norm(dim=1).clamp_min(1e-30)
    scale = (eps / norm).clamp(max=1.0)
    return delta * scale.view(-1, *([1] * (delta.ndim - 1)))


def l1(delta: torch.Tensor, eps: float) -> torch.Tensor:
    """Exact Euclidean projection onto the L1 ball (Duchi et al. 2008, sort-based)."""
    n = delta.shape[0]
    v = delta.reshape(n, -1)
    a = v.abs()
    inside = a.sum(1) <= eps
    if bool(inside.all()):
        return delta.clone()
    u, _ = torch.sort(a, dim=1, descending=True)
    css = u.cumsum(1)
    j = torch.arange(1, u.shape[1] + 1, device=u.device, dtype=u.dtype)
    cond = u - (css - eps) / j > 0
    rho = cond.to(u.dtype).mul(j).amax(1).clamp_min(1)  # the largest j meeting the condition
    theta = (css.gather(1, rho.long()[:, None] - 1)[:, 0] - eps) / rho
    theta = torch.where(inside, torch.zeros_like(theta), theta.clamp_min(0))
    out = torch.sign(v) * (a - theta[:, None]).clamp_min(0)
    return out.reshape(delta.shape)


def l0(delta: torch.Tensor, x: torch.Tensor, k: int) -> torch.Tensor:
    """Nearest δ changing at most ``k`` pixels with ``x + δ`` in [0, 1] (Croce & Hein 2019).

    Each pixel's perturbation is first boxed; keeping pixel p then saves
    ‖δ_p‖² − ‖δ_p − box(δ)_p‖² over zeroing it, and the k pixels that save most are kept.
    """
    n, _, h, w = delta.shape
    boxed = box(delta, x)
    gain = (delta.pow(2) - (delta - boxed).pow(2)).sum(1).reshape(n, h * w)
    k = max(0, min(int(k), h * w))
    keep = torch.zeros_like(gain, dtype=torch.bool)
    if k:
        keep.scatter_(1, gain.topk(k, dim=1).indices, True)
    return boxed * keep.reshape(n, 1, h, w).to(boxed.dtype)


def project(delta: torch.Tensor, x: torch.Tensor, budget: Budget) -> torch.Tensor:
    """Project onto the budget's set intersected with the [0, 1] box.

    For L∞ and the box the two projections commute; for L1 and L2 the norm projection is
    followed by the box (the usual PGD step: feasible, but not the exact projection onto the
    intersection); L0 is exact with the box.
    """
    total = budget.total(tuple(x.shape[1:]))
    if budget.norm == "l0":
        return l0(delta, x, int(total))
    if budget.norm == "linf":
        return box(linf(delta, total), x)
    if budget.norm == "l2":
        return box(l2(delta, total), x)
    if budget.norm == "l1":
        return box(l1(delta, total), x)
    return box(delta, x)


def rescale_l2_clipped(
    delta: torch.Tensor, x: torch.Tensor, eps: float, *, iterations: int = 60, p: int = 2
) -> torch.Tensor:
    """Scale δ by s ≥ 0 so that ‖box(s·δ)‖_p = ``eps`` after clipping to [0, 1] (bisection;
    ``p`` 2 by default, 1 for seed 001's L1 rescaling).

    The clipped norm grows monotonically with s, so bisection finds it. When even the
    largest useful s falls short (δ points out of the box almost everywhere), the largest
    reachable norm is returned; ``norms`` reports what was achieved.
    """
    n = delta.shape[0]
    shape = (-1, *([1] * (delta.ndim - 1)))

    def clipped_norm(s: torch.Tensor) -> torch.Tensor:
        # in float64: a float32 sum over a 512x512x3 tile is off by about 1e-4
        moved = box(delta * s.view(shape).to(delta.dtype), x)
        return moved.reshape(n, -1).double().norm(p=p, dim=1)

    norm0 = delta.reshape(n, -1).double().norm(p=p, dim=1)
    lo = torch.zeros(n, dtype=torch.float64, device=delta.device)
    hi = torch.where(norm0 > 0, eps / norm0.clamp_min(1e-30), torch.zeros_like(norm0))
    # grow the upper end until clipping no longer holds the norm back (or δ saturates)
    for _ in range(40):
        short = clipped_norm(hi) < eps
        if not bool(short.any()):
            break
        hi = torch.where(short, hi * 2, hi)
    for _ in range(iterations):
        mid = (lo + hi) / 2
        below = clipped_norm(mid) < eps
        lo = torch.where(below, mid, lo)
        hi = torch.where(below, hi, mid)
    return box(delta * hi.view(shape).to(delta.dtype), x)

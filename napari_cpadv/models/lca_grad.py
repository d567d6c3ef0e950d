"""Gradients through the sparse coder for adaptive attacks (issue 29, item 4).

``LCA.encode`` runs an optimisation loop under ``no_grad`` until a tolerance: the image has
no gradient, which is why seed 000 attacks the sparse detector in its code. An attacker who
knows the encoder does not stop there (Athalye et al. 2018, "Obfuscated gradients give a
false sense of security"; Tramèr et al. 2020): they differentiate a copy of the loop.

- ``unrolled_codes``: the LCA's dynamics, momentum and restarts as the encoder runs them,
  for a fixed number of iterations with autograd (no tolerance stop), checkpointed every
  ``chunk`` iterations so that memory holds one chunk's graph at a time, not every
  iteration's.
- ``bpda_codes``: BPDA, the real encoder's codes on the forward pass (what the detector
  computes) with the gradient of a short unroll on the backward pass.

No library offers either for an LCA (torchattacks and AutoAttack need a differentiable
model; the LCANets code unrolls its own LCA), hence written here, on ``LCA``'s own
``analysis``, ``synthesis``, gain and step so that the copy is the encoder's dynamics.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from napari_cpadv.progress import check


def unrolled_codes(
    lca: Any,
    x: torch.Tensor,
    iterations: int,
    *,
    stats: tuple[torch.Tensor, torch.Tensor] | None = None,
    chunk: int = 10,
) -> torch.Tensor:
    """The codes ``(N, atoms, H/stride, W/stride)`` of ``x`` after ``iterations`` of the
    LCA's dynamics as ``LCA.iterate`` runs them (FISTA momentum with its gradient restart,
    a branch autograd passes through), differentiable in ``x`` (standardised per image as
    ``LCA.encode`` does, or by ``stats``); no tolerance stop."""
    if iterations < 1 or chunk < 1:
        raise ValueError(f"iterations={iterations}, chunk={chunk}: both must be >= 1")
    xs, _, _ = lca.standardised(x, stats)
    eta, g = lca.step(), lca.gain()
    lam = g * lca.lam
    b = g * lca.analysis(xs)

    def run(u: torch.Tensor, previous: torch.Tensor, b: torch.Tensor, t0: torch.Tensor, n: int):
        t = float(t0)  # recomputed from the same inputs on the backward pass: same branches
        for _ in range(n):
            t_next = (1 + (1 + 4 * t * t) ** 0.5) / 2
            v = u + ((t - 1) / t_next) * (u - previous)
            t = t_next
            a = F.relu(v - lam)
            new = v + eta * (b - g * g * lca.analysis(lca.synthesis(a)) + a - v)
            if float(torch.vdot((v - new).detach().flatten(), (new - u).detach().flatten())) > 0:
                t = 1.0  # the encoder's gradient restart
            previous, u = u, new
        return u, previous, torch.tensor(t)

    u = torch.zeros_like(b)
    previous, t = u, torch.tensor(1.0)
    for k0 in range(0, iterations, chunk):
        check()  # a chunk is a step: Cancel stops a long unroll within one
        n = min(chunk, iterations - k0)
        u, previous, t = checkpoint(run, u, previous, b, t, n, use_reentrant=False)
    return g * F.relu(u - lam)


def bpda_codes(
    lca: Any,
    x: torch.Tensor,
    iterations: int,
    *,
    stats: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> torch.Tensor:
    """The encoder's own codes of ``x`` (``LCA.encode``: its cap and tolerance) whose
    gradient is that of ``iterations`` unrolled iterations (BPDA)."""
    with torch.no_grad():
        real = lca.encode(x.detach(), stats=stats).codes
    short = unrolled_codes(lca, x, iterations, stats=stats)
    return real + (short - short.detach())

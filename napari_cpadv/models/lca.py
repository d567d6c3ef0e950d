"""Seed 000 §2.4: convolutional sparse coding by the locally competitive algorithm (LCA).

An image ``x`` (standardised per image inside the module) is coded by non-negative
coefficients ``a`` over a dictionary ``Φ`` of unit-norm atoms laid on a grid of ``stride``
pixels, minimising

    E(a) = ½‖x̂ − Φa‖² + λ·Σa,   a ≥ 0,   x̂ = (x − μ) / σ.

LCA runs the membrane potentials ``u`` of Rozell et al. (2008):

    u ← u + η·(Φᵀ(x̂ − Φa) + a − u),   a = max(u − λ, 0),   η = 1/τ,

two convolutions per iteration (``analysis`` = Φᵀ, a strided convolution, and
``synthesis`` = Φ, its transpose). The decoder is the same dictionary. Inference is a plain
loop under ``torch.no_grad``; learning takes gradient steps on ½‖x̂ − Φa‖² with the codes
held fixed, then renormalises every atom.

Convergence (issue 14, item 8). Overlapping unit-norm atoms make ‖ΦᵀΦ‖ large (about 200 at
stride 4, 128 atoms of 24 x 24 x 3; four times that at stride 2), so η = 1/τ is unstable
and a guard used to cut it to 1.8/‖ΦᵀΦ‖ ≈ 0.009: 40 iterations then stopped far from the
minimum. Now the dynamics run on the dictionary normalised as a whole, ``gΦ`` with
``g² = τ/‖ΦᵀΦ‖`` (so η·‖(gΦ)ᵀ(gΦ)‖ = 1 and the documented η = 1/τ is the step taken) and
the threshold ``gλ``; the codes are reported for the unit-norm atoms (``a = g·a'``), the
same minimiser of the same E. The potentials also carry Nesterov momentum with FISTA's
schedule and its gradient restart (Beck & Teboulle 2009; O'Donoghue & Candès 2015): on the
active set this update is a gradient step of E with step η on a Hessian of norm ≤ 1/η,
for which FISTA's step 1/L is the provably convergent choice. On a sample tile with the
previous dictionary, 200 iterations with momentum reached a lower energy than 1,000 of
plain LCA (``benchmarks/bench_lca.py`` compares them on the shipped one). The loop
stops when the potentials' relative change in one iteration falls below ``tol``, with
``iterations`` as the cap, and every code says how many iterations it used, its last
relative change and its share of zeros.

The paper leaves the stride and λ open. The defaults (stride 2, λ = 0.4, τ = 10 in units of
iterations, tolerance 3e-3 with a cap of 500 iterations; the measured numbers are in
``sample_data/weights/README.md``):

* stride 2 puts the codes on the DAE latent's grid, so seed 000's one head, pooling by 2,
  gives one value per 4 x 4 pixels for both detectors (the stride is a parameter: stride 4
  costs a quarter and gives one value per 8 x 8, upsampled);
* λ = 0.4 on per-image-standardised pixels keeps the reconstruction's nuclei; the share
  of zeros it gives is measured, not assumed (the paper's 99 % is for its 512 atoms).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from napari_cpadv.device import to_tensor
from napari_cpadv.progress import check


@dataclass(frozen=True)
class SparseCode:
    """Codes of a batch and the standardisation needed to turn them back into images.

    ``codes`` is ``(N, atoms, H/stride, W/stride)``, non-negative; ``mean`` and ``std``
    are ``(N, 1, 1, 1)``: ``image = synthesis(codes) * std + mean``. ``iterations`` is how
    many LCA iterations made them, ``rel_change`` the potentials' relative change in the
    last one, ``tol`` the tolerance the loop stopped on (0 for a fixed count) and
    ``energy`` the energy trace when it was recorded.
    """

    codes: torch.Tensor
    mean: torch.Tensor
    std: torch.Tensor
    iterations: int = 0
    rel_change: float = float("nan")
    energy: tuple[float, ...] = ()
    tol: float = 0.0

    @property
    def sparsity(self) -> float:
        """Share of the coefficients that are exactly zero."""
        return float((self.codes == 0).float().mean())

    @property
    def converged(self) -> bool:
        """Whether the loop stopped on its tolerance rather than on the iteration cap."""
        return self.tol > 0 and self.rel_change < self.tol

    def report(self) -> dict[str, Any]:
        """How far the solver went: iterations used, the last relative change of the
        potentials, whether that met the tolerance, the zero share, and the energy trace
        (mean over the batch) when it was recorded."""
        return {
            "iterations": self.iterations,
            "rel_change": self.rel_change,
            "tol": self.tol,
            "converged": self.converged,
            "sparsity": self.sparsity,
            "energy": list(self.energy),
        }


class LCA(nn.Module):
    """Convolutional LCA sparse coder with a shared encoder/decoder dictionary.

    Parameters
    ----------
    atoms, size
        Number of atoms and their side in pixels (the paper's 512 of 24 x 24 x 3).
    stride
        Pixels between neighbouring code positions; ``size - stride`` must be even.
    lam
        Soft threshold λ, in units of the standardised image (for unit-norm atoms).
    tau
        Time constant in iterations (η = 1/τ).
    iterations
        The cap on LCA iterations per inference.
    tol
        Stop once the potentials' relative change in one iteration is below this; 0 runs
        exactly ``iterations``.
    """

    KAPPA: ClassVar[float] = 1.0  # η·‖(gΦ)ᵀ(gΦ)‖: FISTA's provably convergent step 1/L

    def __init__(
        self,
        *,
        atoms: int = 512,
        size: int = 24,
        stride: int = 2,
        lam: float = 0.4,
        tau: float = 10.0,
        iterations: int = 500,
        tol: float = 3e-3,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if (size - stride) % 2 or size < stride:
            raise ValueError(f"atom size {size} and stride {stride}: size - stride must be even")
        if lam < 0 or tau < 1 or iterations < 1 or not 0 <= tol < 1:
            raise ValueError(f"λ={lam}, τ={tau}, iterations={iterations}, tol={tol} out of range")
        self.atoms, self.size, self.stride = atoms, size, stride
        self.lam, self.tau, self.iterations, self.tol = lam, tau, iterations, tol
        g = torch.Generator().manual_seed(seed)
        self.dictionary = nn.Parameter(torch.randn(atoms, 3, size, size, generator=g))
        self.normalise()

    @property
    def padding(self) -> int:
        return (self.size - self.stride) // 2

    @torch.no_grad()
    def normalise(self) -> None:
        """Give every atom unit L2 norm (after each learning step)."""
        d: torch.Tensor = self.dictionary
        d.div_(d.flatten(1).norm(dim=1).clamp_min(1e-12)[:, None, None, None])

    @staticmethod
    def standardise(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per-image standardisation over pixels and channels: ``(x̂, μ, σ)``."""
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        std = x.std(dim=(1, 2, 3), keepdim=True).clamp_min(1.0 / 255)
        return (x - mean) / std, mean, std

    def analysis(self, r: torch.Tensor) -> torch.Tensor:
        """Φᵀr: ``(N, 3, H, W)`` -> ``(N, atoms, H/stride, W/stride)``."""
        return F.conv2d(r, self.dictionary, stride=self.stride, padding=self.padding)

    def synthesis(self, a: torch.Tensor) -> torch.Tensor:
        """Φa: ``(N, atoms, h, w)`` -> ``(N, 3, h·stride, w·stride)``.

        The strided transposed convolution written in polyphase form: each atom is cut into
        its ``stride²`` phases (every ``stride``-th pixel), one stride-1 transposed
        convolution makes all phases at once and ``pixel_shuffle`` interleaves them. It is
        the same linear map as ``conv_transpose2d(a, Φ, stride)`` and 3.3-7x faster than it
        on the CPU (oneDNN has no fast path for strided transposed convolutions); against
        matmul + ``fold`` it is 1.9x faster for the shipped 128 atoms at stride 2 and about
        as fast for 512 (``benchmarks/bench_lca.py``, one core, 256-pixel tiles).
        """
        _, k, h, w = a.shape
        s = self.stride
        taps = -(-self.size // s)
        d: torch.Tensor = self.dictionary
        if taps * s != self.size:  # zero atoms' far edge up to a whole number of phases
            extra = taps * s - self.size
            d = F.pad(d, (0, extra, 0, extra))
        poly = d.reshape(k, 3, taps, s, taps, s).permute(0, 1, 3, 5, 2, 4)
        full = F.pixel_shuffle(F.conv_transpose2d(a, poly.reshape(k, 3 * s * s, taps, taps)), s)
        p = self.padding
        return full[:, :, p : p + h * s, p : p + w * s]

    def threshold(self, u: torch.Tensor) -> torch.Tensor:
        return F.relu(u - self.lam)

    def energy(self, xs: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        """E(a) per image, ``(N,)``, for standardised ``xs``."""
        r = xs - self.synthesis(a)
        return 0.5 * r.pow(2).flatten(1).sum(1) + self.lam * a.flatten(1).sum(1)

    @torch.no_grad()
    def operator_norm(self) -> float:
        """‖ΦᵀΦ‖ of the unit-norm atoms, by power iteration, cached until they change."""
        version = (self.dictionary._version, self.dictionary.data_ptr())
        if getattr(self, "_norm_for", None) != version:
            side = 4 * self.size // self.stride * self.stride
            g = torch.Generator().manual_seed(1)
            x = torch.randn(1, 3, side, side, generator=g).to(self.dictionary)
            norm = 1.0
            for _ in range(20):
                y = self.synthesis(self.analysis(x))
                norm = float(y.norm() / x.norm().clamp_min(1e-12))
                x = y / y.norm().clamp_min(1e-12)
            self._norm = max(norm, 1e-12)
            self._norm_for = version
        return self._norm

    def gain(self) -> float:
        """``g``: the dynamics run on ``gΦ`` so that η‖(gΦ)ᵀ(gΦ)‖ = KAPPA with η = 1/τ."""
        return (self.KAPPA * self.tau / self.operator_norm()) ** 0.5

    def step(self) -> float:
        """η, the documented 1/τ: stable for the normalised dictionary at any ‖ΦᵀΦ‖."""
        return 1.0 / self.tau

    def _check(self, x: torch.Tensor) -> None:
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"expected (N, 3, H, W) images, got {tuple(x.shape)}")
        if x.shape[2] % self.stride or x.shape[3] % self.stride:
            raise ValueError(f"image sides {tuple(x.shape[2:])} must be multiples of {self.stride}")

    def standardised(
        self, x: torch.Tensor, stats: tuple[torch.Tensor, torch.Tensor] | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(x̂, μ, σ)`` of checked images: per image, or by ``stats`` (a slide's)."""
        self._check(x)
        if stats is None:
            return self.standardise(x)
        mean, std = (s.to(x).expand(len(x), 1, 1, 1) for s in stats)
        return (x - mean) / std, mean, std

    @torch.no_grad()
    def iterate(
        self,
        x: torch.Tensor,
        *,
        iterations: int | None = None,
        stats: tuple[torch.Tensor, torch.Tensor] | None = None,
        tol: float | None = None,
        trace: bool = False,
        momentum: bool = True,
        every: bool = True,
    ) -> Iterator[SparseCode]:
        """Yield the code after every LCA iteration (for energy traces and pictures), or
        with ``every=False`` only the last one (what ``encode`` needs; the codes of the
        other iterations are then never formed).

        ``stats`` replaces the per-image mean and standard deviation (see
        ``SparseDetector.slide_logits``). ``tol`` (default: the module's) stops the loop
        once the membrane potentials' relative change in one iteration (‖Δu‖/‖u‖) falls
        below it, ``iterations`` (default: the module's) is the cap, ``tol=0`` runs exactly
        ``iterations``; ``trace`` records the energy (mean over the batch) at every
        iteration; ``momentum=False`` runs Rozell's plain dynamics (for comparison).
        """
        xs, mean, std = self.standardised(x, stats)
        cap = self.iterations if iterations is None else iterations
        tol = self.tol if tol is None else tol
        if cap < 1 or not 0 <= tol < 1:
            raise ValueError(f"iterations={cap}, tol={tol} out of range")
        eta, g = self.step(), self.gain()
        lam = g * self.lam
        b = g * self.analysis(xs)
        u = torch.zeros_like(b)
        previous, t = u, 1.0
        energies: list[float] = []
        for k in range(cap):
            check()  # an iteration is a step: Cancel stops a long encode within one
            if momentum:
                t_next = (1 + (1 + 4 * t * t) ** 0.5) / 2
                v = u + ((t - 1) / t_next) * (u - previous)
                t = t_next
            else:
                v = u
            a = F.relu(v - lam)
            new = v + eta * (b - g * g * self.analysis(self.synthesis(a)) + a - v)
            step = new - u
            if momentum and float(torch.vdot((v - new).flatten(), step.flatten())) > 0:
                t = 1.0  # gradient restart: the momentum points uphill
            change = float(step.norm() / new.norm().clamp_min(1e-12))
            previous, u = u, new
            last = change < tol or k + 1 == cap
            if every or trace or last:
                codes = g * F.relu(u - lam)
                if trace:
                    energies.append(float(self.energy(xs, codes).mean()))
                if every or last:
                    yield SparseCode(codes, mean, std, k + 1, change, tuple(energies), tol)
            if change < tol:
                return

    @torch.no_grad()
    def encode(
        self,
        x: torch.Tensor,
        *,
        iterations: int | None = None,
        stats: tuple[torch.Tensor, torch.Tensor] | None = None,
        tol: float | None = None,
        trace: bool = False,
        momentum: bool = True,
    ) -> SparseCode:
        """Sparse-code ``(N, 3, H, W)`` images in [0, 1]; no autograd through the loop.

        Runs until the potentials' relative change falls below ``tol`` (``iterations`` the
        cap; both default to the module's); the code reports iterations, last relative
        change, whether it converged, sparsity (and the energy trace).
        """
        *_, last = self.iterate(
            x,
            iterations=iterations,
            stats=stats,
            tol=tol,
            trace=trace,
            momentum=momentum,
            every=False,
        )
        return last

    def decode(self, code: SparseCode) -> torch.Tensor:
        """Back to image space (differentiable in ``code.codes``)."""
        return self.synthesis(code.codes) * code.std + code.mean

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The sparse reconstruction of ``x``."""
        return self.decode(self.encode(x))

    def learning_loss(self, x: torch.Tensor, code: SparseCode) -> torch.Tensor:
        """½‖x̂ − Φa‖² per pixel, averaged over the batch; gradients reach only Φ."""
        xs = (x - code.mean) / code.std
        r = xs - self.synthesis(code.codes.detach())
        return 0.5 * r.pow(2).mean()


def windows(
    images: Any, among: np.ndarray, batch: int, crop: int, rng: np.random.Generator
) -> np.ndarray:
    """``batch`` random ``crop`` x ``crop`` windows of the tiles ``among``."""
    side = images.shape[1]
    pick = rng.choice(among, size=batch)
    ys = rng.integers(0, side - crop + 1, size=batch)
    xs = rng.integers(0, side - crop + 1, size=batch)
    return np.stack(
        [images[i, y : y + crop, x : x + crop] for i, y, x in zip(pick, ys, xs, strict=True)]
    )


@torch.no_grad()
def seed_atoms(lca: Any, images: Any, among: np.ndarray, rng: np.random.Generator) -> None:
    """Set every atom to a random standardised window of the tiles ``among`` of ``images``
    (then unit norm); only the tiles picked are read."""
    n, side = len(among), images.shape[1]
    k, size = lca.atoms, lca.size
    pick = among[rng.integers(0, n, size=k)]
    ys, xs = rng.integers(0, side - size + 1, size=(2, k))
    picked = np.stack(
        [images[i, y : y + size, x : x + size] for i, y, x in zip(pick, ys, xs, strict=True)]
    )
    w, _, _ = lca.standardise(to_tensor(picked))
    lca.dictionary.copy_(w.to(lca.dictionary))
    lca.normalise()


def solver_summary(reports: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """How far the LCA went over many codes: iterations (mean, max), the share that met the
    tolerance, the largest last relative change and the mean share of zeros."""
    iterations = np.array([r["iterations"] for r in reports], dtype=float)
    return {
        "codes": len(reports),
        "iterations_mean": float(iterations.mean()),
        "iterations_max": int(iterations.max()),
        "converged": float(np.mean([bool(r["converged"]) for r in reports])),
        "rel_change_max": float(max(r["rel_change"] for r in reports)),
        "tol": float(reports[0]["tol"]),
        "sparsity": float(np.mean([r["sparsity"] for r in reports])),
    }

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

The paper leaves the stride and λ open. The defaults (stride 4, λ = 0.4, τ = 10 in units of
iterations, 60 iterations, chosen after measuring on the synthetic slides; the numbers are
in ``sample_data/weights/README.md``):

* stride 4 puts one code vector on each 4 x 4 cell of seed 000's heatmap, so the head sees
  the cell grid at the same pitch as the DAE head does after its pooling, and costs 4x
  less per iteration than stride 2 (the codes are 512 channels at H/4 x W/4; each
  convolution is 512·24²·3·HW/16 multiply-adds);
* λ = 0.4 on per-image-standardised pixels leaves about 99 % of the codes at zero, the
  paper's figure, while the reconstruction keeps the nuclei;
* η = 1/τ must stay below 2/‖ΦᵀΦ‖ for the explicit update to be stable; ``step`` checks
  that by power iteration and shrinks η when a learnt dictionary would violate it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from napari_cpadv.models.heads import CELL, CellHead


@dataclass(frozen=True)
class SparseCode:
    """Codes of a batch and the standardisation needed to turn them back into images.

    ``codes`` is ``(N, atoms, H/stride, W/stride)``, non-negative; ``mean`` and ``std``
    are ``(N, 1, 1, 1)``: ``image = synthesis(codes) * std + mean``.
    """

    codes: torch.Tensor
    mean: torch.Tensor
    std: torch.Tensor
    iterations: int = 0
    rel_change: float = float("nan")
    energy: tuple[float, ...] = ()

    @property
    def sparsity(self) -> float:
        """Share of the coefficients that are exactly zero."""
        return float((self.codes == 0).float().mean())

    def report(self) -> dict[str, Any]:
        """How far the solver went: iterations used, the last relative change of the
        potentials (with a tolerance), the zero share, and the energy trace (mean over the
        batch) when it was recorded."""
        return {
            "iterations": self.iterations,
            "rel_change": self.rel_change,
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
        Soft threshold λ, in units of the standardised image.
    tau
        Time constant in iterations (η = 1/τ).
    iterations
        LCA iterations per inference.
    """

    def __init__(
        self,
        *,
        atoms: int = 512,
        size: int = 24,
        stride: int = 4,
        lam: float = 0.4,
        tau: float = 10.0,
        iterations: int = 60,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if (size - stride) % 2 or size < stride:
            raise ValueError(f"atom size {size} and stride {stride}: size - stride must be even")
        if lam < 0 or tau < 1 or iterations < 1:
            raise ValueError(f"λ={lam}, τ={tau}, iterations={iterations} out of range")
        self.atoms, self.size, self.stride = atoms, size, stride
        self.lam, self.tau, self.iterations = lam, tau, iterations
        g = torch.Generator().manual_seed(seed)
        self.dictionary = nn.Parameter(torch.randn(atoms, 3, size, size, generator=g))
        self.normalise()

    @property
    def padding(self) -> int:
        return (self.size - self.stride) // 2

    @torch.no_grad()
    def normalise(self) -> None:
        """Give every atom unit L2 norm (after each learning step)."""
        d = self.dictionary
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

        The transposed convolution written as one matrix product and ``fold``: on the CPU
        this is 4x faster than ``conv_transpose2d`` for 512 atoms (measured in
        ``benchmarks/bench_detectors.py``), and it is the same linear map.
        """
        n, k, h, w = a.shape
        cols = self.dictionary.reshape(k, -1).t() @ a.reshape(n, k, h * w)
        return F.fold(
            cols,
            (h * self.stride, w * self.stride),
            self.size,
            padding=self.padding,
            stride=self.stride,
        )

    def threshold(self, u: torch.Tensor) -> torch.Tensor:
        return F.relu(u - self.lam)

    def energy(self, xs: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        """E(a) per image, ``(N,)``, for standardised ``xs``."""
        r = xs - self.synthesis(a)
        return 0.5 * r.pow(2).flatten(1).sum(1) + self.lam * a.flatten(1).sum(1)

    @torch.no_grad()
    def step(self) -> float:
        """η for the update: 1/τ, reduced to 1.8/‖ΦᵀΦ‖ if that is smaller (stability).

        ‖ΦᵀΦ‖ comes from a few power iterations, cached until the dictionary changes.
        """
        version = (self.dictionary._version, self.dictionary.data_ptr())
        if getattr(self, "_step_for", None) != version:
            side = 4 * self.size
            g = torch.Generator().manual_seed(1)
            x = torch.randn(1, 3, side, side, generator=g).to(self.dictionary)
            norm = 1.0
            for _ in range(12):
                y = self.synthesis(self.analysis(x))
                norm = float(y.norm() / x.norm().clamp_min(1e-12))
                x = y / y.norm().clamp_min(1e-12)
            self._step = min(1.0 / self.tau, 1.8 / max(norm, 1e-12))
            self._step_for = version
        return self._step

    def _check(self, x: torch.Tensor) -> None:
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"expected (N, 3, H, W) images, got {tuple(x.shape)}")
        if x.shape[2] % self.stride or x.shape[3] % self.stride:
            raise ValueError(f"image sides {tuple(x.shape[2:])} must be multiples of {self.stride}")

    @torch.no_grad()
    def iterate(
        self,
        x: torch.Tensor,
        *,
        iterations: int | None = None,
        stats: tuple[torch.Tensor, torch.Tensor] | None = None,
        tol: float | None = None,
        trace: bool = False,
    ) -> Iterator[SparseCode]:
        """Yield the code after every LCA iteration (for energy traces and pictures).

        ``stats`` replaces the per-image mean and standard deviation (see
        ``SparseDetector.slide_logits``). With ``tol`` the loop stops once the membrane
        potentials' relative change in one iteration (‖Δu‖/‖u‖) falls below it (the energy
        can stand still while potentials still rise towards the threshold; ``iterations``
        is then the cap);
        ``trace`` records the energy (mean over the batch) at every iteration. Each code
        says how many iterations it took and the last relative change.
        """
        self._check(x)
        if stats is None:
            xs, mean, std = self.standardise(x)
        else:
            mean, std = (s.to(x).expand(len(x), 1, 1, 1) for s in stats)
            xs = (x - mean) / std
        eta = self.step()
        b = self.analysis(xs)
        u = torch.zeros_like(b)
        a = self.threshold(u)
        energies: list[float] = []
        change = float("nan")
        for k in range(iterations or self.iterations):
            du = eta * (b - self.analysis(self.synthesis(a)) + a - u)
            u = u + du
            a = self.threshold(u)
            if tol is not None:  # how far the potentials still move, relative to them
                change = float(du.norm() / u.norm().clamp_min(1e-12))
            if trace:
                energies.append(float(self.energy(xs, a).mean()))
            yield SparseCode(a, mean, std, k + 1, change, tuple(energies))
            if tol is not None and change < tol:
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
    ) -> SparseCode:
        """Sparse-code ``(N, 3, H, W)`` images in [0, 1]; no autograd through the loop.

        ``tol`` runs until the potentials' relative change falls below it (``iterations``
        the cap); the code reports iterations, last relative change, sparsity (and the
        energy trace).
        """
        *_, last = self.iterate(x, iterations=iterations, stats=stats, tol=tol, trace=trace)
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


class SparseDetector(nn.Module):
    """Seed 000's sparse-coding tumour detector: ``LCA.encode`` then a ``CellHead``.

    ``forward`` maps ``(N, 3, H, W)`` in [0, 1] (sides multiples of ``2·stride``) to cell
    logits ``(N, H/4, W/4)``. No gradient flows through the sparse coding; the latent attack
    works on ``encode(x).codes`` through ``head`` and ``lca.decode``.
    """

    name: ClassVar[str] = "sparse"
    output: ClassVar[str] = "cells"
    cell = CELL
    data_mean: torch.Tensor
    data_std: torch.Tensor

    def __init__(self, **hyper: Any) -> None:
        super().__init__()
        self.hyper: dict[str, Any] = {
            "atoms": int(hyper.get("atoms", 512)),
            "size": int(hyper.get("size", 24)),
            "stride": int(hyper.get("stride", 4)),
            "lam": float(hyper.get("lam", 0.4)),
            "tau": float(hyper.get("tau", 10.0)),
            "iterations": int(hyper.get("iterations", 60)),
            "head_channels": list(hyper.get("head_channels", (36, 18))),
            "head_dropout": float(hyper.get("head_dropout", 0.5)),
        }
        h = self.hyper
        self.lca = LCA(
            atoms=h["atoms"],
            size=h["size"],
            stride=h["stride"],
            lam=h["lam"],
            tau=h["tau"],
            iterations=h["iterations"],
        )
        self.head = CellHead(
            h["atoms"],
            latent_stride=h["stride"],
            channels=tuple(h["head_channels"]),
            dropout=h["head_dropout"],
        )
        # Mean and standard deviation of the training tiles (set by the dictionary training):
        # over a slide, tiles of background would otherwise be standardised on their own
        # and show as seams.
        self.register_buffer("data_mean", torch.full((1, 1, 1, 1), 0.5))
        self.register_buffer("data_std", torch.full((1, 1, 1, 1), 0.25))
        self.multiple = max(CELL, 2 * h["stride"])
        # LCA lets every code hear its neighbours' atoms once per iteration; the influence
        # fades within a few atom widths, so three atoms of context hide every seam
        # (measured in tests/models/test_inference.py).
        self.margin = -(-3 * h["size"] // self.multiple) * self.multiple

    def config(self) -> dict[str, Any]:
        return dict(self.hyper)

    def encode(self, x: torch.Tensor) -> SparseCode:
        return self.lca.encode(x)

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return self.lca(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encode(x).codes)

    def tumour_logits(self, x: torch.Tensor) -> torch.Tensor:
        return self(x)

    def slide_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Cell logits for tiles cut from a slide: standardised by the training data's
        mean and deviation instead of each tile's own, so neighbouring tiles agree."""
        return self.head(self.lca.encode(x, stats=(self.data_mean, self.data_std)).codes)

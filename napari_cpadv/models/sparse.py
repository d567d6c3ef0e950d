"""Seed 000's sparse-coding tumour detector: the LCA sparse coder of
:mod:`napari_cpadv.models.lca`, then a cell head on the code."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from napari_cpadv.models.heads import CELL, CellHead
from napari_cpadv.models.lca import LCA, SparseCode


class SparseDetector(nn.Module):
    """Seed 000's sparse-coding tumour detector: ``LCA.encode`` then a ``CellHead``.

    ``forward`` maps ``(N, 3, H, W)`` in [0, 1] (sides multiples of ``2·stride``) to cell
    logits ``(N, H/4, W/4)``. No gradient flows through the sparse coding; the latent attack
    works on ``encode(x).codes`` through ``head`` and ``synthesise``.
    """

    name: ClassVar[str] = "sparse"
    # A forward's cost against the DAE's on the same pixels, for progress estimates: about
    # 7 s against 7 ms for a 128 x 128 tile on 2 CPU cores (BENCHMARKS.md).
    forward_cost: ClassVar[float] = 1000.0
    # the encoding is an iterative solver with no gradient to the image (seed 000 §2.8.1)
    gradient_free: ClassVar[bool] = True
    # a code the head reads: the latent attack and saliency work on it (encode, head, synthesise)
    latent: ClassVar[bool] = True
    natural_attack: ClassVar[str] = "latent"  # seed 000 §2.8.1
    output: ClassVar[str] = "cells"
    cell = CELL
    data_mean: torch.Tensor
    data_std: torch.Tensor

    def __init__(self, **hyper: Any) -> None:
        super().__init__()
        self.hyper: dict[str, Any] = {
            "atoms": int(hyper.get("atoms", 512)),
            "size": int(hyper.get("size", 24)),
            "stride": int(hyper.get("stride", 2)),
            "lam": float(hyper.get("lam", 0.4)),
            "tau": float(hyper.get("tau", 10.0)),
            "iterations": int(hyper.get("iterations", 500)),
            "tol": float(hyper.get("tol", 3e-3)),
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
            tol=h["tol"],
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

    def synthesise(self, codes: torch.Tensor) -> torch.Tensor:
        """The image (standardised units) that ``codes`` synthesise through the dictionary."""
        return self.lca.synthesis(codes)

    def unrolled_codes(self, x: torch.Tensor, iterations: int) -> torch.Tensor:
        """``encode``'s codes after ``iterations``, built with autograd (``lca_grad``)."""
        from napari_cpadv.models.lca_grad import unrolled_codes

        return unrolled_codes(self.lca, x, iterations)

    def bpda_codes(self, x: torch.Tensor, iterations: int) -> torch.Tensor:
        """``encode``'s codes with the gradient of ``iterations`` unrolled (BPDA)."""
        from napari_cpadv.models.lca_grad import bpda_codes

        return bpda_codes(self.lca, x, iterations)

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

"""Seed 000 §2.3: the deep denoising autoencoder.

Encoder: conv 36@8x8, max-pool 2, dropout 0.1, conv 18@4x4, dropout 0.1, conv 9@3x3.
The decoder mirrors it with its own weights: conv 18@3x3, dropout, conv 36@4x4, dropout,
nearest 2x upsampling, conv 3@8x8. Every convolution has stride 1, a bias, "same" padding
(TensorFlow's: for an even kernel the extra row and column go after), Glorot-uniform
weights and a ReLU, as the paper says of each layer. A 512x512x3 tile gives a 256x256x9
latent.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from napari_cpadv.models._layers import SameConv2d
from napari_cpadv.models.heads import CELL, CellHead

STRIDE = 2  # input pixels per latent position


class DAE(nn.Module):
    """The denoising autoencoder; ``encode`` gives the latent the cell head reads.

    Parameters
    ----------
    channels
        ``(c1, c2, latent)`` filter counts; the paper's ``(36, 18, 9)``.
    kernels
        ``(k1, k2, k3)`` kernel sizes; the paper's ``(8, 4, 3)``.
    dropout
        After the pooling and after the second convolution; the paper's 0.1.
    """

    stride = STRIDE

    def __init__(
        self,
        *,
        channels: tuple[int, int, int] = (36, 18, 9),
        kernels: tuple[int, int, int] = (8, 4, 3),
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        c1, c2, c3 = channels
        k1, k2, k3 = kernels
        self.enc1 = SameConv2d(3, c1, k1)
        self.enc2 = SameConv2d(c1, c2, k2)
        self.enc3 = SameConv2d(c2, c3, k3)
        self.dec1 = SameConv2d(c3, c2, k3)
        self.dec2 = SameConv2d(c2, c1, k2)
        self.dec3 = SameConv2d(c1, 3, k1)
        self.drop = nn.Dropout(dropout)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, 3, H, W)`` in [0, 1] (H, W even) -> latent ``(N, 9, H/2, W/2)``."""
        h = F.max_pool2d(F.relu(self.enc1(x)), 2)
        h = self.drop(h)
        h = self.drop(F.relu(self.enc2(h)))
        return F.relu(self.enc3(h))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Latent ``(N, 9, h, w)`` -> image ``(N, 3, 2h, 2w)``."""
        h = self.drop(F.relu(self.dec1(z)))
        h = self.drop(F.relu(self.dec2(h)))
        h = F.interpolate(h, scale_factor=2, mode="nearest")
        return F.relu(self.dec3(h))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The reconstruction of ``x``."""
        return self.decode(self.encode(x))


class DaeDetector(nn.Module):
    """Seed 000's deep-denoising tumour detector: ``DAE.encode`` then a ``CellHead``.

    ``forward`` maps ``(N, 3, H, W)`` images in [0, 1] (sides multiples of 4) to cell logits
    ``(N, H/4, W/4)``; ``encode`` and ``head`` are reachable separately for attacks.
    """

    name: ClassVar[str] = "dae"
    output: ClassVar[str] = "cells"
    gradient_free: ClassVar[bool] = False
    latent: ClassVar[bool] = False
    natural_attack: ClassVar[str] = "fgsm"  # seed 000 §2.8.2
    cell = CELL
    multiple = 4  # the encoder's and the head's pooling
    margin = 32  # receptive field: 34 input pixels, so 17 on each side; rounded up to 4·8

    def __init__(self, **hyper: Any) -> None:
        super().__init__()
        self.hyper: dict[str, Any] = {
            "channels": list(hyper.get("channels", (36, 18, 9))),
            "kernels": list(hyper.get("kernels", (8, 4, 3))),
            "dropout": float(hyper.get("dropout", 0.1)),
            "head_channels": list(hyper.get("head_channels", (36, 18))),
            "head_dropout": float(hyper.get("head_dropout", 0.5)),
        }
        h = self.hyper
        self.autoencoder = DAE(
            channels=tuple(h["channels"]), kernels=tuple(h["kernels"]), dropout=h["dropout"]
        )
        self.head = CellHead(
            h["channels"][2],
            latent_stride=STRIDE,
            channels=tuple(h["head_channels"]),
            dropout=h["head_dropout"],
        )

    def config(self) -> dict[str, Any]:
        return dict(self.hyper)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The latent ``(N, 9, H/2, W/2)``."""
        return self.autoencoder.encode(x)

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return self.autoencoder(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encode(x))

    def tumour_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Cell logits ``(N, H/4, W/4)``: the detector's tumour score at each cell."""
        return self(x)

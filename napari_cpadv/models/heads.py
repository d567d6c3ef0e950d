"""Seed 000 §2.5: the cell-level classifier that reads an autoencoder's latent.

conv 36@4x4, ReLU, dropout 0.5, conv 18@3x3, ReLU, average-pool 2, conv 1@2x2; "same"
padding, Glorot-uniform weights, stride 1. The last layer is left linear: the head returns
logits and the sigmoid is applied only for display and scores (DESIGN.md, outputs).

On the DAE's stride-2 latent the pooling lands exactly on seed 000's grid of one value per
4 x 4 input pixels. A latent of another stride is brought onto the same grid (bilinear
upsampling of the logits for a coarser latent, average pooling for a finer one), so both
detectors are scored on identical cells.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from napari_cpadv.models._layers import SameConv2d

CELL = 4  # input pixels per heatmap cell, on each side


class CellHead(nn.Module):
    """Latent ``(N, C, H/s, W/s)`` -> cell logits ``(N, H/4, W/4)``.

    Parameters
    ----------
    in_channels
        Channels of the latent (9 for the DAE, the number of atoms for the sparse coder).
    latent_stride
        Input pixels per latent position ``s``.
    channels, dropout
        The paper's ``(36, 18)`` and 0.5.
    """

    def __init__(
        self,
        in_channels: int,
        *,
        latent_stride: int,
        channels: tuple[int, int] = (36, 18),
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        c1, c2 = channels
        self.latent_stride = latent_stride
        self.conv1 = SameConv2d(in_channels, c1, 4)
        self.conv2 = SameConv2d(c1, c2, 3)
        self.conv3 = SameConv2d(c2, 1, 2)
        self.drop = nn.Dropout(dropout)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.drop(F.relu(self.conv1(z)))
        h = F.avg_pool2d(F.relu(self.conv2(h)), 2)
        logits = self.conv3(h)
        out_stride = 2 * self.latent_stride
        if out_stride > CELL:
            logits = F.interpolate(
                logits, scale_factor=out_stride // CELL, mode="bilinear", align_corners=False
            )
        elif out_stride < CELL:
            logits = F.avg_pool2d(logits, CELL // out_stride)
        return logits[:, 0]

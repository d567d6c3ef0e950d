"""Layers the seed-000 networks share."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class SameConv2d(nn.Conv2d):
    """A stride-1 convolution with TensorFlow's "same" padding, Glorot-uniform weights."""

    def __init__(self, cin: int, cout: int, k: int) -> None:
        super().__init__(cin, cout, k, padding=0)
        nn.init.xavier_uniform_(self.weight)
        nn.init.zeros_(self.bias)  # type: ignore[arg-type]  # built with bias=True
        total = k - 1
        self._pad = (total // 2, total - total // 2, total // 2, total - total // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(F.pad(x, self._pad))

"""Where torch work runs: CUDA, then Apple's MPS, then the CPU; ``CPADV_DEVICE`` overrides."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import torch

ENV = "CPADV_DEVICE"


def pick_device(requested: str | None = None) -> torch.device:
    """The device to use: ``requested``, else ``$CPADV_DEVICE``, else cuda > mps > cpu.

    Raises ``ValueError`` for a device torch does not know or that is not present, so a
    typo never silently falls back to the CPU.
    """
    import torch

    name = requested or os.environ.get(ENV) or ""
    if not name:
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise ValueError(f"unknown torch device {name!r}") from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} asked for, but CUDA is not available")
    return device


def batch_size(device: torch.device, *, tile: int) -> int:
    """How many tiles of ``tile`` x ``tile`` pixels to run at once on ``device``.

    On CUDA the batch grows with free memory (about 64 MB per 512-pixel tile covers the
    sparse coder's 512-channel codes and the autoencoder's activations); the CPU runs one
    at a time because its threads already parallelise inside each convolution.
    """
    import torch

    if device.type != "cuda":
        return 1
    free, _ = torch.cuda.mem_get_info(device)
    per_tile = 64 * 2**20 * (tile / 512) ** 2
    return int(max(1, min(64, free * 0.5 // per_tile)))


def to_tensor(images: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
    """uint8 ``(N, H, W, 3)`` -> float32 ``(N, 3, H, W)`` in [0, 1] on ``device``."""
    import numpy as np
    import torch

    t = torch.from_numpy(np.ascontiguousarray(images)).to(device)
    return t.permute(0, 3, 1, 2).float().div_(255)

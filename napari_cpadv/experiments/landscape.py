"""Seed 001 Fig. 2b: the loss landscape of the trained classifier in the plane of its
training trajectory (Li et al., "Visualizing the loss landscape of neural nets", 2018, §7).

The parameters saved before training and after every epoch (``train_resnet(trajectory=)``)
are taken relative to the final ones; their first two principal components (scikit-learn's
``PCA``, as Li et al.'s own code does) span a plane through the final parameters. The
training loss is evaluated on a grid of that plane (the model in eval mode, its batch-norm
statistics those of the end of training) and the trajectory is projected onto it, in the
units of the grid.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from napari_cpadv.device import to_tensor
from napari_cpadv.progress import Progress, Work


def pca_plane(trajectory: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Two unit directions ``(2, P)`` of the trajectory's differences from its last point,
    the trajectory's coordinates ``(T, 2)`` along them, and the variance each explains."""
    from sklearn.decomposition import PCA

    if len(trajectory) < 3:
        raise ValueError(
            f"a PCA plane needs at least 3 saved parameter vectors, got {len(trajectory)}"
        )
    final = trajectory[-1]
    diffs = np.stack([w - final for w in trajectory[:-1]]).astype(np.float64)
    pca = PCA(n_components=2, svd_solver="full").fit(diffs)
    directions = pca.components_.astype(np.float32)
    # coordinates of every saved point (the final one at the origin), unprojected by the
    # PCA's centring: a point of the plane is final + a·d1 + b·d2
    coords = np.stack([directions @ (w - final) for w in trajectory])
    explained = {"explained_variance_ratio": [float(v) for v in pca.explained_variance_ratio_]}
    return directions, coords, explained


@torch.no_grad()
def _set(model: torch.nn.Module, flat: np.ndarray) -> None:
    start = 0
    for p in model.parameters():
        n = p.numel()
        p.copy_(torch.from_numpy(flat[start : start + n]).view_as(p).to(p))
        start += n


def loss_landscape(
    model: torch.nn.Module,
    trajectory: Sequence[np.ndarray],
    images: np.ndarray,
    labels: np.ndarray,
    *,
    points: int = 21,
    margin: float = 0.25,
    batch: int = 32,
    device: torch.device | str = "cpu",
) -> Work[dict[str, Any]]:
    """The cross-entropy of ``model`` on ``images`` (``(N, S, S, 3)`` uint8) over a
    ``points`` x ``points`` grid of the trajectory's PCA plane, the trajectory on it.

    The grid spans the trajectory's extent along each direction plus ``margin`` of it on
    every side. ``model`` is left with its final parameters.
    """
    if points < 2:
        raise ValueError(f"a landscape grid needs at least 2 points a side, got {points}")
    directions, coords, explained = pca_plane(trajectory)
    final = trajectory[-1]
    lo, hi = coords.min(0), coords.max(0)
    pad = margin * np.maximum(hi - lo, 1e-6)
    axes = [np.linspace(lo[i] - pad[i], hi[i] + pad[i], points) for i in range(2)]
    x = to_tensor(images, device)
    y = torch.from_numpy(np.asarray(labels, dtype=np.int64)).to(device)
    model.to(device).eval()
    loss = np.zeros((points, points))
    try:
        for i, b in enumerate(axes[1]):
            for j, a in enumerate(axes[0]):
                _set(model, final + a * directions[0] + b * directions[1])
                loss[i, j] = _loss(model, x, y, batch)
                yield Progress(i * points + j + 1, points * points, {"phase": "landscape"})
    finally:
        _set(model, final)
    path_loss = []
    for w in trajectory:
        _set(model, w)
        path_loss.append(_loss(model, x, y, batch))
    _set(model, final)
    return {
        "alpha": axes[0].tolist(),
        "beta": axes[1].tolist(),
        "loss": loss.tolist(),  # rows: beta, columns: alpha
        "trajectory": coords.tolist(),
        "trajectory_loss": path_loss,
        "images": len(images),
        **explained,
    }


@torch.no_grad()
def _loss(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int) -> float:
    total = sum(
        float(F.cross_entropy(model(x[i : i + batch]), y[i : i + batch], reduction="sum"))
        for i in range(0, len(x), batch)
    )
    return total / len(x)

"""Training loops as generators (DESIGN.md: long work yields ``Progress``, returns a result).

Data are ``cpadv tiles`` folders (``index.csv``, ``tiles/``, ``masks/``). Each loop runs on
whatever ``device`` it is given (CPU or CUDA), takes a seed for every random choice, and
stops cleanly at the next yield when the generator is closed.

* ``train_dae``: Gaussian noise σ = 0.1 on the input, MSE to the clean tile (seed 000 §2.3).
* ``train_dictionary``: LCA dictionary on tumour-free tiles (§2.4): codes by LCA with the
  dictionary fixed, a gradient step on the reconstruction error, atoms renormalised.
* ``train_head``: binary cross-entropy on logits against the cell masks, the autoencoder
  frozen (§2.5). Latents are computed once (the sparse codes stored sparse).
* ``train_resnet``: AdaDelta, lr 0.01, cross-entropy on patches labelled by seed 001's rule.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F

from napari_cpadv.device import to_tensor
from napari_cpadv.models.data import (
    TileSet,
    batch_images,
)
from napari_cpadv.models.detector import Detector
from napari_cpadv.models.lca import seed_atoms, windows

if TYPE_CHECKING:
    from napari_cpadv.models.dae import DaeDetector
    from napari_cpadv.models.sparse import SparseDetector
from napari_cpadv.progress import Progress, Work, within


def _batches(n: int, batch: int, rng: np.random.Generator) -> list[np.ndarray]:
    order = rng.permutation(n)
    return [order[i : i + batch] for i in range(0, n, batch)]


def _augment(x: torch.Tensor, rng: np.random.Generator) -> tuple[torch.Tensor, int, bool]:
    """A random dihedral transform (tissue has no orientation); returns how to redo it."""
    k, flip = int(rng.integers(4)), bool(rng.integers(2))
    x = torch.rot90(x, k, dims=(-2, -1))
    return (torch.flip(x, dims=(-1,)) if flip else x), k, flip


def _redo(y: torch.Tensor, k: int, flip: bool) -> torch.Tensor:
    y = torch.rot90(y, k, dims=(-2, -1))
    return torch.flip(y, dims=(-1,)) if flip else y


def _epochs(
    n: int,
    step: Callable[[np.ndarray, np.ndarray | None], torch.Tensor],
    optimiser: torch.optim.Optimizer,
    *,
    epochs: int,
    batch: int,
    rng: np.random.Generator,
    phase: str,
    after_epoch: Callable[[int], None] | None = None,
    images: Any = None,
    workers: int = 0,
) -> Work[list[float]]:
    """The shared loop: shuffled batches of ``n`` items, ``step(indices, pixels)`` gives the
    loss to minimise (``pixels`` the batch's ``images``, read ahead by ``workers`` when they
    are streamed; ``None`` without images); yields after every batch, calls
    ``after_epoch(epoch)`` after every epoch, returns the mean loss of every epoch."""
    losses: list[float] = []
    total, done = epochs * -(-n // batch), 0
    for epoch in range(epochs):
        running = []
        order = _batches(n, batch, rng)
        pixels = batch_images(images, order, workers=workers) if images is not None else None
        for idx in order:
            loss = step(idx, None if pixels is None else next(pixels))
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            running.append(float(loss.detach()))
            done += 1
            yield Progress(done, total, {"phase": phase, "epoch": epoch, "loss": running[-1]})
        losses.append(float(np.mean(running)))
        if after_epoch is not None:
            after_epoch(epoch)
    return losses


def train_dae(
    detector: DaeDetector,
    data: TileSet,
    *,
    epochs: int = 4,
    batch: int = 8,
    lr: float = 1e-3,
    noise: float = 0.1,
    seed: int = 0,
    device: torch.device | str = "cpu",
    workers: int = 0,
) -> Work[list[float]]:
    """Train ``detector.autoencoder`` to denoise; returns the mean loss of every epoch
    (``workers``: processes reading streamed tiles ahead)."""
    rng = np.random.default_rng(seed)
    gen = torch.Generator(device=device).manual_seed(seed)
    model = detector.autoencoder.to(device).train()

    def step(_idx: np.ndarray, pixels: Any) -> torch.Tensor:
        clean, _, _ = _augment(to_tensor(pixels, device), rng)
        noisy = clean + noise * torch.randn(clean.shape, generator=gen, device=device)
        return F.mse_loss(model(noisy), clean)

    opt = torch.optim.Adam(model.parameters(), lr=lr)
    losses = yield from _epochs(
        len(data),
        step,
        opt,
        epochs=epochs,
        batch=batch,
        rng=rng,
        phase="autoencoder",
        images=data.images,
        workers=workers,
    )
    model.eval()
    return losses


def train_dictionary(
    detector: SparseDetector,
    data: TileSet,
    *,
    epochs: float = 1.4,
    batch: int = 8,
    crop: int = 64,
    lr: float = 2e-3,
    iterations: int | None = None,
    init_from_data: bool = False,
    seed: int = 0,
    device: torch.device | str = "cpu",
) -> Work[list[float]]:
    """Learn ``detector.lca``'s dictionary on the tumour-free tiles of ``data``.

    Each step sparse-codes ``batch`` random ``crop`` x ``crop`` windows (crops keep the cost
    of LCA down; atoms see the same statistics), takes an Adam step on the reconstruction
    error and renormalises the atoms. ``epochs`` may be fractional (the paper's 1.4).
    With ``init_from_data`` the atoms start as random standardised windows of the tiles, so
    that every atom is active from the first step (random atoms rarely cross λ and die).
    Returns the loss of every step.
    """
    lca = detector.lca.to(device)
    free = np.flatnonzero(data.tumour_cells == 0)
    if free.size == 0:
        raise ValueError("no tumour-free tiles to learn the dictionary from")
    rng = np.random.default_rng(seed)
    side = data.images.shape[1]
    crop = min(crop, side) // lca.stride * lca.stride
    per_epoch = max(1, free.size * (side // crop) ** 2 // batch)
    total = max(1, round(epochs * per_epoch))
    if init_from_data:
        seed_atoms(lca, data.images, free, rng)
    with torch.no_grad():  # the tiles' mean colour statistics, a batch at a time
        stats = [
            lca.standardise(to_tensor(data.images[i : i + 64]))[1:] for i in range(0, len(data), 64)
        ]
        mean = torch.cat([m.flatten() for m, _ in stats])
        std = torch.cat([s.flatten() for _, s in stats])
        detector.data_mean.fill_(float(mean.mean()))
        detector.data_std.fill_(float(std.mean()))
    opt = torch.optim.Adam([lca.dictionary], lr=lr)
    losses: list[float] = []
    for step in range(1, total + 1):
        x = to_tensor(windows(data.images, free, batch, crop, rng), device)
        code = lca.encode(x, iterations=iterations, tol=None if iterations is None else 0.0)
        loss = lca.learning_loss(x, code)
        opt.zero_grad()
        loss.backward()
        opt.step()
        lca.normalise()
        losses.append(float(loss.detach()))
        sparsity = float((code.codes == 0).float().mean())
        shown = {"loss": losses[-1], "zeros": sparsity, "iterations": code.iterations}
        yield Progress(step, total, {"phase": "dictionary", **shown, "gain": lca.gain()})
    return losses


def latents(
    detector: DaeDetector | SparseDetector,
    data: TileSet,
    *,
    device: torch.device | str = "cpu",
    reports: list[dict[str, Any]] | None = None,
) -> Work[list[torch.Tensor]]:
    """The frozen autoencoder's latent of every tile (sparse codes kept as sparse tensors);
    a sparse coder's solver report of every tile is appended to ``reports`` when given."""
    detector.to(device).eval()
    out: list[torch.Tensor] = []
    with torch.no_grad():
        for i in range(len(data)):
            z: Any = detector.encode(to_tensor(data.images[i : i + 1], device))
            if reports is not None and hasattr(z, "report"):
                reports.append(z.report())
            z = getattr(z, "codes", z)[0].cpu()
            out.append(z.to_sparse() if getattr(detector, "latent", False) else z)
            yield Progress(i + 1, len(data), {"phase": "latents"})
    return out


def train_head(
    detector: DaeDetector | SparseDetector,
    data: TileSet,
    *,
    epochs: int = 10,
    batch: int = 8,
    lr: float = 1e-3,
    seed: int = 0,
    device: torch.device | str = "cpu",
    reports: list[dict[str, Any]] | None = None,
) -> Work[list[float]]:
    """Train ``detector.head`` on the frozen latents; returns the mean loss of every epoch
    (a sparse coder's solver reports of the latents go to ``reports`` when given)."""
    torch.manual_seed(seed)
    z_all = yield from within(latents(detector, data, device=device, reports=reports), 0, 0.5)
    rng = np.random.default_rng(seed)
    head = detector.head.to(device).train()
    masks = torch.from_numpy(data.masks).float()

    def step(idx: np.ndarray, _: Any) -> torch.Tensor:
        z = torch.stack([z_all[i].to_dense() if z_all[i].is_sparse else z_all[i] for i in idx])
        z, k, flip = _augment(z.to(device), rng)
        target = _redo(masks[idx].to(device), k, flip)
        return F.binary_cross_entropy_with_logits(head(z), target)

    opt = torch.optim.Adam(head.parameters(), lr=lr)
    losses = yield from within(
        _epochs(len(data), step, opt, epochs=epochs, batch=batch, rng=rng, phase="head"), 0.5, 1
    )
    head.eval()
    return losses


def train_resnet(
    detector: Detector,
    data: TileSet,
    *,
    epochs: int = 25,
    batch: int = 16,
    lr: float = 0.01,
    seed: int = 0,
    device: torch.device | str = "cpu",
    trajectory: list[np.ndarray] | None = None,
    workers: int = 0,
) -> Work[list[float]]:
    """Seed 001's training: AdaDelta at lr 0.01, cross-entropy; returns per-epoch loss.

    ``trajectory``, when given, receives the parameters (one flat float32 vector, in
    ``parameters()`` order) before training and after every epoch: the path that seed 001's
    PCA loss landscape (Fig. 2b) draws."""
    torch.manual_seed(seed)
    patches, labels = data.patch_labels()
    if len(np.unique(labels)) < 2:
        raise ValueError("ResNet training needs positive and negative patches")
    rng = np.random.default_rng(seed)
    model = detector.to(device).train()
    y_all = torch.from_numpy(labels)

    def step(idx: np.ndarray, pixels: Any) -> torch.Tensor:
        x, _, _ = _augment(to_tensor(pixels, device), rng)
        return F.cross_entropy(model(x), y_all[idx].to(device))

    def keep(_epoch: int = -1) -> None:
        if trajectory is not None:
            trajectory.append(flat_parameters(model))

    keep()
    opt = torch.optim.Adadelta(model.parameters(), lr=lr)
    losses = yield from _epochs(
        len(patches),
        step,
        opt,
        epochs=epochs,
        batch=batch,
        rng=rng,
        phase="resnet",
        after_epoch=keep,
        images=patches.images,
        workers=workers,
    )
    model.eval()
    return losses


def flat_parameters(model: torch.nn.Module) -> np.ndarray:
    """Every parameter of ``model`` in one flat float32 vector (``parameters()`` order)."""
    with torch.no_grad():
        return torch.cat([p.detach().reshape(-1).cpu() for p in model.parameters()]).numpy()

"""Seed 000's pictures: reconstructions (its Figure 2) and first-layer features (4 and 5).

Every function returns RGB uint8 arrays; the CLI writes them as PNG and napari shows them
as image layers.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

NOISE = 0.1  # seed 000's denoising noise, also used for the noisy row of Figure 2


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """``(3, H, W)`` in [0, 1] -> ``(H, W, 3)`` uint8 (clipped)."""
    return (x.detach().clamp(0, 1).permute(1, 2, 0).cpu().numpy() * 255 + 0.5).astype(np.uint8)


@torch.no_grad()
def reconstructions(
    tile: np.ndarray, *, dae: Any, sparse: Any, seed: int = 0
) -> dict[str, np.ndarray]:
    """Clean and noisy versions of ``tile`` (``(H, W, 3)`` uint8) and both reconstructions.

    Keys: ``clean``, ``sparse``, ``dae`` (top row of Figure 2) and ``noisy``,
    ``sparse_noisy``, ``dae_noisy`` (bottom row); the noise is N(0, 0.1²), seeded.
    """
    x = torch.from_numpy(np.ascontiguousarray(tile)).permute(2, 0, 1)[None].float() / 255
    g = torch.Generator().manual_seed(seed)
    noisy = (x + NOISE * torch.randn(x.shape, generator=g)).clamp(0, 1)
    dae.eval(), sparse.eval()
    return {
        "clean": to_uint8(x[0]),
        "sparse": to_uint8(sparse.reconstruct(x)[0]),
        "dae": to_uint8(dae.reconstruct(x)[0]),
        "noisy": to_uint8(noisy[0]),
        "sparse_noisy": to_uint8(sparse.reconstruct(noisy)[0]),
        "dae_noisy": to_uint8(dae.reconstruct(noisy)[0]),
    }


def slide_reconstructions(
    slide: Any, *, level: int, size: int, dae: Any, sparse: Any, seed: int = 0
) -> dict[str, np.ndarray]:
    """``reconstructions`` of the slide's most tissue-rich ``size``-pixel tile of ``level``
    (the coarsest level when ``level`` is beyond it)."""
    from napari_cpadv.errors import CpadvError
    from napari_cpadv.slide.tiles import tissue_tiles

    level = min(level, len(slide.levels) - 1)
    tiles = list(tissue_tiles(slide, level=level, size=size))
    if not tiles:
        raise CpadvError(slide.path, f"no tissue tile of {size} pixels at level {level}")
    t = max(tiles, key=lambda t: t.fraction)
    tile = slide.read_region(level, t.row, t.col, size, size)
    return reconstructions(tile, dae=dae, sparse=sparse, seed=seed)


def grid(images: list[np.ndarray], *, columns: int, gap: int = 2, upscale: int = 1) -> np.ndarray:
    """Lay equal-sized RGB images in rows of ``columns`` on white, each enlarged ``upscale``x."""
    h, w = images[0].shape[:2]
    h, w = h * upscale, w * upscale
    rows = -(-len(images) // columns)
    out = np.full((rows * (h + gap) + gap, columns * (w + gap) + gap, 3), 255, np.uint8)
    for i, im in enumerate(images):
        r, c = divmod(i, columns)
        big = np.repeat(np.repeat(im, upscale, axis=0), upscale, axis=1)
        out[
            gap + r * (h + gap) : gap + r * (h + gap) + h,
            gap + c * (w + gap) : gap + c * (w + gap) + w,
        ] = big
    return out


def kernels(weight: torch.Tensor) -> list[np.ndarray]:
    """Each ``(3, k, k)`` kernel stretched to [0, 255] on its own (as the paper shows them)."""
    out = []
    for k in weight.detach().cpu():
        k = (k - k.min()) / (k.max() - k.min()).clamp_min(1e-12)
        out.append(to_uint8(k))
    return out


def features(*, dae: Any, sparse: Any) -> dict[str, np.ndarray]:
    """``dae_kernels``: the DAE's 36 first-layer 8x8 kernels; ``dictionary``: the LCA atoms."""
    d = kernels(dae.autoencoder.enc1.weight)
    atoms = kernels(sparse.lca.dictionary)
    return {
        "dae_kernels": grid(d, columns=9, upscale=6),
        "dictionary": grid(atoms, columns=32 if len(atoms) >= 256 else 16, upscale=2),
    }


def figure_2(pictures: dict[str, np.ndarray]) -> np.ndarray:
    """The six reconstructions as one picture, in seed 000's Figure 2 order."""
    order = ["clean", "sparse", "dae", "noisy", "sparse_noisy", "dae_noisy"]
    return grid([pictures[k] for k in order], columns=3, gap=4)

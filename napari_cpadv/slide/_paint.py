"""The painter of the synthetic slides: a scene (tissue blobs, tumour polygons, foci,
stain strengths) built from the seed, and ``render_tile``, a pure function of the scene
that paints any window of any level (stroma, then the nearest lattice nucleus of each
pixel). See :mod:`napari_cpadv.slide.synthetic` for what it paints and how it is written."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from napari_cpadv.slide._scene import (
    _NUCLEUS_DTYPE,
    BACKGROUND,
    _fill,
    _in_blobs,
    _Scene,
)

_M1, _M2, _M3 = (
    np.uint64(0x9E3779B97F4A7C15),
    np.uint64(0xC2B2AE3D27D4EB4F),
    np.uint64(0x165667B19E3779F9),
)


def _hash(i: np.ndarray, j: np.ndarray, seed: int, k: int) -> np.ndarray:
    """Uniform [0, 1) numbers, a pure function of the integer grid position, seed and stream."""
    salt = np.uint64((seed * 0x27D4EB2F165667C5 + k * 0x94D049BB133111EB) % 2**64)
    x = (i.astype(np.int64).astype(np.uint64) * _M1) ^ (j.astype(np.int64).astype(np.uint64) * _M2)
    x = x ^ salt
    x ^= x >> np.uint64(30)
    x *= np.uint64(0xBF58476D1CE4E5B9)
    x ^= x >> np.uint64(27)
    x *= _M3
    x ^= x >> np.uint64(31)
    return (x >> np.uint64(11)).astype(np.float64) * (1.0 / 2**53)


@dataclass(frozen=True)
class _Cells:
    """Nucleus parameters for a window of lattice cells (level-0 pixels)."""

    present: np.ndarray
    tumour: np.ndarray
    cx: np.ndarray
    cy: np.ndarray
    a: np.ndarray  # semi-major axis
    b: np.ndarray  # semi-minor axis
    cos: np.ndarray
    sin: np.ndarray
    tone: np.ndarray


def _cells(scene: _Scene, rows: np.ndarray, cols: np.ndarray) -> _Cells:
    """Nuclei of the lattice cells ``rows x cols`` (index vectors; may reach one cell outside)."""
    ii, jj = np.meshgrid(rows, cols, indexing="ij")
    tissue = np.zeros(ii.shape, bool)
    h, w = scene.tissue_cells.shape
    on_grid = (ii >= -1) & (ii < h - 1) & (jj >= -1) & (jj < w - 1)
    tissue[on_grid] = scene.tissue_cells[ii[on_grid] + 1, jj[on_grid] + 1]
    u = [_hash(ii, jj, scene.seed, k).astype(np.float32) for k in range(7)]
    c, um = scene.cell_px, 1.0 / scene.px_um
    jitter = 0.22 * c
    cx = (jj + 0.5) * c + (u[1] - 0.5) * 2 * jitter
    cy = (ii + 0.5) * c + (u[2] - 0.5) * 2 * jitter
    # A nucleus is a tumour nucleus when its centre lies in a tumour region.
    tumour = np.zeros(ii.shape, bool)
    tumour[tissue] = _in_blobs(cx[tissue], cy[tissue], scene.tumours + scene.foci)
    present = tissue & (u[0] < np.where(tumour, 0.93, 0.5))
    radius = np.where(tumour, 3.8 + 2.2 * u[3] ** 1.5, 2.4 + 0.8 * u[3]) * um
    elong = np.where(tumour, 1.0 + 0.6 * u[4], 1.0 + 0.12 * u[4])
    a, b = radius * np.sqrt(elong), radius / np.sqrt(elong)
    ang = u[5] * np.pi
    return _Cells(present, tumour, cx, cy, a, b, np.cos(ang), np.sin(ang), u[6])


def _nuclei(scene: _Scene) -> np.ndarray:
    """Every nucleus the painter draws whose centre lies on the slide, in bands of lattice rows."""
    h, w = scene.tissue_cells.shape
    parts = []
    band = max(1, 2**20 // max(w, 1))
    for i0 in range(-1, h - 1, band):
        cells = _cells(scene, np.arange(i0, min(i0 + band, h - 1)), np.arange(-1, w - 1))
        m = cells.present & (cells.cx >= 0) & (cells.cy >= 0)
        m &= (cells.cx < scene.shape[1]) & (cells.cy < scene.shape[0])
        rec = np.empty(int(m.sum()), _NUCLEUS_DTYPE)
        rec["x"], rec["y"] = cells.cx[m], cells.cy[m]
        rec["radius"] = np.sqrt(cells.a[m] * cells.b[m])
        rec["tumour"] = cells.tumour[m]
        parts.append(rec)
    return np.concatenate(parts) if parts else np.empty(0, _NUCLEUS_DTYPE)


# -- painting ----------------------------------------------------------------------------


def _value_noise(ys: np.ndarray, xs: np.ndarray, scale: float, seed: int, k: int) -> np.ndarray:
    """Smooth noise in [0, 1) on level-0 coordinates, lattice spacing ``scale`` pixels."""
    fy, fx = ys / scale, xs / scale
    iy, ix = np.floor(fy).astype(np.int64), np.floor(fx).astype(np.int64)
    ty, tx = fy - iy, fx - ix
    ty, tx = ty * ty * (3 - 2 * ty), tx * tx * (3 - 2 * tx)
    oy, ox = iy.min(), ix.min()
    window = (iy.max() - oy + 2) * (ix.max() - ox + 2)
    if window <= 4 * len(ys) * len(xs):  # the lattice window is small: hash it once
        gi, gj = np.meshgrid(
            np.arange(oy, iy.max() + 2), np.arange(ox, ix.max() + 2), indexing="ij"
        )
        lat = _hash(gi, gj, seed, 100 + k).astype(np.float32)
        r, c = (iy - oy)[:, None], (ix - ox)[None, :]
        c00, c01, c10, c11 = lat[r, c], lat[r, c + 1], lat[r + 1, c], lat[r + 1, c + 1]
    else:  # lattice finer than the pixels (a coarse level): hash only the corners needed
        r, c = iy[:, None], ix[None, :]
        c00, c01 = _hash(r, c, seed, 100 + k), _hash(r, c + 1, seed, 100 + k)
        c10, c11 = _hash(r + 1, c, seed, 100 + k), _hash(r + 1, c + 1, seed, 100 + k)
    top = c00 * (1 - tx[None, :]) + c01 * tx[None, :]
    bot = c10 * (1 - tx[None, :]) + c11 * tx[None, :]
    return (top * (1 - ty[:, None]) + bot * ty[:, None]).astype(np.float32)


def _stained(rgb: Sequence[float], strength: float) -> np.ndarray:
    """Scale a stain's optical density (Beer-Lambert), keeping white white."""
    od = -np.log(np.clip(np.asarray(rgb, np.float32), 1, 255) / 255.0)
    return 255.0 * np.exp(-od * strength)


def render_tile(
    scene: _Scene, level_shape: tuple[int, int], row0: int, col0: int, rows: int, cols: int
) -> np.ndarray | None:
    """Paint ``rows x cols`` pixels of a level from ``(row0, col0)``; ``None`` if all background."""
    sy, sx = scene.shape[0] / level_shape[0], scene.shape[1] / level_shape[1]
    bx0, by0, bx1, by1 = col0 * sx, row0 * sy, (col0 + cols) * sx, (row0 + rows) * sy
    hit = [
        b
        for b in scene.tissue
        if b.bbox[0] < bx1 and b.bbox[2] > bx0 and b.bbox[1] < by1 and b.bbox[3] > by0
    ]
    if not hit:
        return None
    size, kw = (rows, cols), {"sx": sx, "sy": sy, "x0": float(col0), "y0": float(row0)}
    tissue = _fill(size, hit, **kw)
    if not tissue.any():
        return None
    tumour = _fill(size, scene.tumours + scene.foci, **kw) & tissue
    ys = (row0 + np.arange(rows) + 0.5) * sy
    xs = (col0 + np.arange(cols) + 0.5) * sx
    img = _stroma(scene, ys, xs, tumour)
    nucleus = _nearest_nucleus(scene, ys, xs)
    # Anti-aliased edge about one level pixel wide; nuclei smaller than a pixel (coarse
    # levels) are point-sampled, so a pixel's expected colour keeps the nuclear fraction.
    ds = max(sx, sy)
    sharp = np.where(nucleus.b >= ds, nucleus.b / ds, np.float32(1e6))
    cover = np.clip((1 - nucleus.dist) * sharp + 0.5, 0, 1).astype(np.float32)
    cover[~tissue] = 0
    colour = _nucleus_colour(scene, ys, xs, nucleus)
    img = img * (1 - cover[..., None]) + colour * cover[..., None]
    rng = np.random.default_rng([scene.seed, row0, col0, rows, cols])
    img += rng.normal(0, 2.0, size=(rows, cols, 1)).astype(np.float32)
    img[~tissue] = BACKGROUND
    return np.clip(img + 0.5, 0, 255).astype(np.uint8)


def _stroma(scene: _Scene, ys: np.ndarray, xs: np.ndarray, tumour: np.ndarray) -> np.ndarray:
    """Stroma and cytoplasm: eosin with a soft fibrous texture, pinker in tumour."""
    e_str = scene.stain[1]
    tex = _value_noise(ys, xs, 5.0 / scene.px_um, scene.seed, 1) - 0.5
    tex += 0.5 * (_value_noise(ys, xs, 1.5 / scene.px_um, scene.seed, 2) - 0.5)
    stroma = _stained((226, 160, 204), e_str)
    cyto = _stained((236, 166, 204), e_str)
    img = np.where(tumour[..., None], cyto, stroma).astype(np.float32)
    img *= (1 + 0.10 * tex)[..., None]
    return img


@dataclass(frozen=True)
class _Nearest:
    """Per pixel: the distance to its nearest nucleus in that nucleus's own units (1 on its
    edge), the nucleus's ``b`` semi-axis, whether it is a tumour nucleus, and its tone."""

    dist: np.ndarray
    b: np.ndarray
    tumour: np.ndarray
    tone: np.ndarray


def _nearest_nucleus(scene: _Scene, ys: np.ndarray, xs: np.ndarray) -> _Nearest:
    """The nearest lattice nucleus of the 3 x 3 cells around each pixel."""
    c = scene.cell_px
    ci, cj = np.floor(ys / c).astype(np.int64), np.floor(xs / c).astype(np.int64)
    # Only the cells next to some pixel centre: at coarse levels most cells fall between.
    cell_rows = np.unique(np.concatenate([ci - 1, ci, ci + 1]))
    cell_cols = np.unique(np.concatenate([cj - 1, cj, cj + 1]))
    cells = _cells(scene, cell_rows, cell_cols)
    rpos = [np.searchsorted(cell_rows, ci + d).astype(np.int32) for d in (-1, 0, 1)]
    cpos = [np.searchsorted(cell_cols, cj + d).astype(np.int32) for d in (-1, 0, 1)]
    # Per-cell terms of the rotated-ellipse distance, relative to the tile's first pixel
    # (float32 keeps sub-pixel precision there); absent nuclei are infinitely far.
    width = cells.cx.shape[1]
    ox, oy = xs[0], ys[0]
    terms = [
        (cells.cx - ox).astype(np.float32).ravel(),
        (cells.cy - oy).astype(np.float32).ravel(),
        (cells.cos / cells.a).astype(np.float32).ravel(),
        (cells.sin / cells.a).astype(np.float32).ravel(),
        (cells.cos / cells.b).astype(np.float32).ravel(),
        (cells.sin / cells.b).astype(np.float32).ravel(),
        np.where(cells.present, 0, np.inf).astype(np.float32).ravel(),
    ]
    px = (xs - ox).astype(np.float32)[None, :]
    py = (ys - oy).astype(np.float32)[:, None]
    qs = np.empty((9, len(ys), len(xs)), np.float32)
    index = [rpos[n // 3][:, None] * width + cpos[n % 3][None, :] for n in range(9)]
    for n in range(9):
        cx, cy, ca, sa, cb, sb, off = (t.take(index[n]) for t in terms)
        dx, dy = px - cx, py - cy
        u = dx * ca + dy * sa
        v = dy * cb - dx * sb
        qs[n] = u * u + v * v + off
    nearest = qs.argmin(axis=0)
    best_q = np.take_along_axis(qs, nearest[None], axis=0)[0]
    chosen = index[4].copy()
    for n in (0, 1, 2, 3, 5, 6, 7, 8):
        pick = nearest == n
        chosen[pick] = index[n][pick]
    return _Nearest(
        np.sqrt(best_q),
        cells.b.astype(np.float32).ravel().take(chosen),
        cells.tumour.ravel().take(chosen),
        cells.tone.astype(np.float32).ravel().take(chosen),
    )


def _nucleus_colour(scene: _Scene, ys: np.ndarray, xs: np.ndarray, n: _Nearest) -> np.ndarray:
    """Normal nuclei dark and even; tumour nuclei pale with dark chromatin clumps and rim."""
    h_str = scene.stain[0]
    dark = _stained((72, 42, 128), h_str)
    pale = _stained((150, 100, 182), h_str)
    chrom = _value_noise(ys, xs, 0.7 / scene.px_um, scene.seed, 3)
    clump = np.clip((chrom - 0.55) * 4, 0, 1)
    rim = np.clip((n.dist - 0.78) * 6, 0, 1)
    t_mix = np.clip(0.25 + 0.75 * clump + 0.6 * rim, 0, 1)[..., None]
    nucleus_t = pale * (1 - t_mix) + dark * t_mix
    nucleus_n = dark * (0.92 + 0.16 * n.tone)[..., None]
    return np.where(n.tumour[..., None], nucleus_t, nucleus_n)

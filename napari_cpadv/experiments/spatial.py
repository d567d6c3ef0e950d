"""Spatial cross-validation on one field of real tissue (issue 28): a detector trained on
part of a field and scored on another part of it must not have seen the test pixels.

The field's level is cut into ``k`` vertical stripes of whole cells; fold ``f`` tests on
stripe ``f``. Training tiles are cut only where every pixel lies at least ``gap`` level
pixels from the test stripe (the gap at least the detector's receptive field, its
``margin``), so no test pixel is ever in a training input; the fold is scored on the
stripe's cells, the heatmap computed with its usual context. Randomly drawn tiles of one
field would put neighbouring pixels on both sides and score memory, not detection.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from napari_cpadv.progress import Work, within

if TYPE_CHECKING:
    from napari_cpadv.models.detector import Detector


@dataclass(frozen=True)
class Fold:
    """Fold ``index`` of a field's level of ``cols`` columns: test columns ``[c0, c1)``,
    training columns at least ``gap`` pixels away from them."""

    index: int
    c0: int
    c1: int
    gap: int
    cols: int

    def trains_on(self, col: int, side: int) -> bool:
        """Whether a tile over columns ``[col, col + side)`` may train this fold."""
        return col + side <= self.c0 - self.gap or col >= self.c1 + self.gap

    def training_spans(self) -> list[tuple[int, int]]:
        """The column spans ``[a, b)`` training tiles may cover."""
        spans = [(0, self.c0 - self.gap), (self.c1 + self.gap, self.cols)]
        return [(a, b) for a, b in spans if b > a]


def folds(cols: int, k: int, gap: int, *, cell: int = 4) -> list[Fold]:
    """``k`` stripes of whole cells covering ``cols`` columns (the last takes the rest)."""
    if k < 2:
        raise ValueError(f"spatial cross-validation needs at least 2 folds, got {k}")
    if gap < 0:
        raise ValueError(f"the gap between training and test pixels must be >= 0, got {gap}")
    width = cols // cell // k * cell
    if width < cell:
        raise ValueError(f"{cols} columns cannot make {k} stripes of whole {cell}-pixel cells")
    edges = [f * width for f in range(k)] + [cols // cell * cell]
    return [Fold(f, edges[f], edges[f + 1], gap, cols) for f in range(k)]


def training_positions(rows: int, fold: Fold, side: int, stride: int) -> list[tuple[int, int]]:
    """``(row, col)`` corners of ``side`` tiles on a ``stride`` grid (cells aligned) that
    may train ``fold``, each span's last column included so its edge is used too."""
    positions = []
    for a, b in fold.training_spans():
        if b - a < side:
            continue
        cols = sorted(set(range(a, b - side + 1, stride)) | {(b - side) // 4 * 4})
        for r in range(0, rows - side + 1, stride):
            positions += [(r, c) for c in cols if fold.trains_on(c, side)]
    return positions


@dataclass(frozen=True)
class Field:
    """One field to cross-validate on: the slide, its level, the ground truth, and the
    truth file of its nuclei (``None``: nuclei not counted)."""

    slide: Any
    level: int
    annotations: Any
    truth: str | None = None


def tile_set(field: Field, positions: list[tuple[int, int]], side: int) -> Any:
    """The tiles at ``positions`` as a ``models.data.TileSet`` with their cell masks and,
    when the field has a truth file, the nuclei and tumour nuclei whose centres lie in each
    (what seed 001's patch rule counts)."""
    from napari_cpadv.experiments.tiles import read_tiles
    from napari_cpadv.models.data import TileSet

    tiles = read_tiles(field.slide, field.level, positions, side, annotations=field.annotations)
    images = (tiles.x.permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8)
    masks = np.asarray(tiles.labels, bool)
    nuclei, tumour = _counts(field, positions, side)
    names = tuple(f"{field.slide.path.name}@{r},{c}" for r, c in positions)
    return TileSet(images, masks, masks.mean(axis=(1, 2)), nuclei, tumour, names)


UNLABELLED_PIXELS = 64_000_000
"""``unlabelled_tiles`` reads a slide whole at the level it samples: at most this many
pixels there (a region, such as CMU-1's, not a whole-slide image)."""


def unlabelled_tiles(path: str | Path, um_per_px: float, side: int) -> Any:
    """Non-overlapping ``side``-pixel tiles of tissue (seed 000's hue rule) of the slide at
    ``path``, resampled to ``um_per_px`` (the field's level), as a ``TileSet`` with no
    labels (empty cell masks, nucleus counts -1): pixels for the autoencoders' unsupervised
    phases, which read no label. The slide is read at its coarsest level no coarser than
    ``um_per_px`` and averaged down (scikit-image's anti-aliased ``rescale``)."""
    from skimage.transform import rescale

    from napari_cpadv.errors import FormatError
    from napari_cpadv.models.data import TileSet
    from napari_cpadv.slide import open_slide
    from napari_cpadv.slide.tissue import tile_is_tissue

    slide = open_slide(path)
    if slide.mpp is None:
        raise FormatError(path, "states no microns per pixel: it cannot be brought to the field's")
    um = [max(slide.mpp) * float(ds) for ds in slide.downsamples]  # each level's
    fine = [k for k, u in enumerate(um) if u <= um_per_px * 1.01]
    if not fine:
        raise FormatError(
            path, f"is {um[0]:.3g} µm per pixel, coarser than the field's {um_per_px}"
        )
    level = fine[-1]
    g = slide.geometry[level]
    if g.rows * g.cols > UNLABELLED_PIXELS:
        raise FormatError(
            path, f"level {level} is {g.rows} x {g.cols} pixels: give a region (at most "
            f"{UNLABELLED_PIXELS:,} pixels), not a whole-slide image",
        )  # fmt: skip
    pixels = slide.read_region(level, 0, 0, g.rows, g.cols)
    factor = um[level] / um_per_px
    if abs(factor - 1) > 0.01:
        pixels = rescale(pixels, factor, channel_axis=-1, anti_aliasing=True, preserve_range=True)
        pixels = np.clip(np.round(pixels), 0, 255).astype(np.uint8)
    rows, cols = pixels.shape[0] // side, pixels.shape[1] // side
    tiles = [
        (r * side, c * side, pixels[r * side : (r + 1) * side, c * side : (c + 1) * side])
        for r in range(rows)
        for c in range(cols)
    ]
    tiles = [t for t in tiles if tile_is_tissue(t[2])]
    if not tiles:
        raise FormatError(path, f"holds no {side}-pixel tile of tissue at {um_per_px} µm per pixel")
    n, cells = len(tiles), side // 4
    return TileSet(
        np.stack([t[2] for t in tiles]),
        np.zeros((n, cells, cells), bool),
        np.zeros(n),
        np.full(n, -1),
        np.full(n, -1),
        tuple(f"{Path(path).name}@{r},{c} (unlabelled)" for r, c, _ in tiles),
    )


def _counts(
    field: Field, positions: list[tuple[int, int]], side: int
) -> tuple[np.ndarray, np.ndarray]:
    """Nuclei and tumour nuclei centred in each tile (-1 each without a truth file)."""
    if field.truth is None:
        return np.full(len(positions), -1), np.full(len(positions), -1)
    from napari_cpadv.annotations.dataset import read_nuclei

    x, y, tumour = read_nuclei(field.truth)
    ds = float(field.slide.downsamples[field.level])
    r0 = np.array([r for r, _ in positions], float)[:, None] * ds
    c0 = np.array([c for _, c in positions], float)[:, None] * ds
    inside = (x >= c0) & (x < c0 + side * ds) & (y >= r0) & (y < r0 + side * ds)
    return inside.sum(axis=1), (inside & tumour).sum(axis=1)


def score_fold(
    detector: Detector, field: Field, fold: Fold, *, device: Any = "cpu", patch: int | None = None
) -> Work[dict[str, Any]]:
    """AUC-PR of a cell detector over the cells of ``fold``'s test stripe, beside the null
    model (``None`` values when the stripe holds no tumour cell); a patch classifier's
    AUC-ROC and accuracy over the stripe's patches (``score_patches``)."""
    from napari_cpadv.inference.detect import score_against
    from napari_cpadv.inference.heatmap import Window, heatmap

    if detector.output == "classes":
        return (yield from score_patches(detector, field, fold, patch or detector.cell, device))
    g = field.slide.geometry[field.level]
    cell = detector.cell
    area = Window(0, fold.c0 // cell, g.rows // cell, (fold.c1 - fold.c0) // cell)
    hm = yield from heatmap(
        detector, field.slide, level=field.level, scope="region", area=area, device=device
    )
    s = score_against(hm, field.slide, field.annotations) or {}
    kept: dict[str, Any] = {k: s[k] for k in ("aucpr", "null_aucpr", "n_cells") if k in s}
    return {"fold": fold.index, "columns": [fold.c0, fold.c1], "aucpr": None, **kept}


def stripe_patches(field: Field, fold: Fold, side: int) -> list[tuple[int, int]]:
    """The whole ``side`` patches of ``fold``'s stripe, on a grid from its corner."""
    rows = field.slide.geometry[field.level].rows
    return [
        (r, c)
        for r in range(0, rows - side + 1, side)
        for c in range(fold.c0, fold.c1 - side + 1, side)
    ]


def score_patches(
    detector: Detector, field: Field, fold: Fold, side: int, device: Any = "cpu"
) -> Work[dict[str, Any]]:
    """Seed 001's patch-level score on ``fold``'s stripe: its whole ``side`` patches labelled
    by the rule (positive with at least 5 tumour nuclei, negative with none, the rest left
    out), AUC-ROC and accuracy of the classifier's tumour logit."""
    from napari_cpadv.models.data import holdout_metrics

    if field.truth is None:
        raise ValueError("a patch classifier is scored by counting nuclei: the field needs --truth")
    tiles = tile_set(field, stripe_patches(field, fold, side), side)
    labels = tiles.patch_labels()[1]
    row: dict[str, Any] = {"fold": fold.index, "columns": [fold.c0, fold.c1], "aucroc": None}
    row |= {"patches": len(tiles), "excluded": len(tiles) - len(labels)}
    if 0 < labels.sum() < len(labels):
        row |= holdout_metrics(detector, tiles, device=device)
    yield from ()  # one step: a stripe's patches are a few forward passes
    return row


def fitter(
    name: str,
    field: Field,
    *,
    kept: dict[int, Any] | None = None,
    unlabelled: Any = None,
    unlabelled_data: list[str] | None = None,
    **options: Any,
) -> Any:
    """``train(tiles, fold)`` for ``crossvalidate``: ``models.fit.fit`` of detector
    ``name`` on the fold's tiles (``options``: its ``hyper``, ``schedule``, ``seed``,
    ``device``), recorded as tiles of the field's slide; ``unlabelled`` tiles of other
    slides (``unlabelled_tiles``, from ``unlabelled_data``) join the unsupervised phases
    of every fold; ``kept`` (when given) receives each fold's ``(detector, record)`` by
    fold index."""
    from napari_cpadv.models.fit import Streamed, fit

    def train(tiles: Any, fold: Fold) -> Work[Any]:
        source = Streamed(
            tiles,
            [str(field.slide.path)],
            field.level,
            unlabelled=unlabelled,
            unlabelled_data=unlabelled_data,
        )
        detector, record = yield from fit(name, streamed=source, **options)
        if detector.margin > fold.gap:
            raise ValueError(
                f"a gap of {fold.gap} pixels is less than the trained {name}'s receptive "
                f"field ({detector.margin} pixels): test pixels would reach training inputs"
            )
        if kept is not None:
            kept[fold.index] = (detector, record)
        return detector

    return train


def crossvalidate(
    train: Any,
    field: Field,
    *,
    gap: int,
    k: int = 3,
    side: int = 64,
    stride: int = 32,
    reference: Any = None,
    device: Any = "cpu",
    cell: int = 4,
) -> Work[dict[str, Any]]:
    """Train with ``train(tiles, fold)`` (a ``Work`` returning a detector; ``fitter``) on
    each fold's training tiles, at least ``gap`` level pixels (the trained detector's
    receptive field: its ``margin``) from the fold's test stripe, and score it there;
    ``reference`` (a detector, e.g. the shipped one) is scored on the same stripes (a
    classifier on the same patches). Stripes are whole ``cell``s: 4 pixels for the cell
    detectors, a patch (``side``) for a classifier, whose patches are its tiles. Returns the
    folds and the mean and SD of their AUC-PR (a classifier's: AUC-ROC and accuracy)."""
    g = field.slide.geometry[field.level]
    out = []
    for f in folds(g.cols, k, gap, cell=cell):
        # one bar over the folds: each fold's training, its score, the reference's score
        at = [(f.index + part) / k for part in (0, 0.6, 0.8, 1)]
        tiles = tile_set(field, training_positions(g.rows, f, side, stride), side)
        detector = yield from within(train(tiles, f), at[0], at[1])
        score = score_fold(detector, field, f, device=device, patch=side)
        row = yield from within(score, at[1], at[2] if reference is not None else at[3])
        row["training_tiles"] = len(tiles)
        if reference is not None:
            score = score_fold(reference, field, f, device=device, patch=side)
            ref = yield from within(score, at[2], at[3])
            metric = "aucroc" if detector.output == "classes" else "aucpr"
            row[f"reference_{metric}"] = ref.get(metric)
        out.append(row)
    summary: dict[str, Any] = {"folds": out, "gap": gap, "side": side}
    for metric in ("aucpr", "aucroc", "accuracy"):
        scored = [r[metric] for r in out if r.get(metric) is not None]
        if any(metric in r for r in out):  # a mean and SD of fewer than two folds: None
            summary[metric] = (
                {"mean": float(np.mean(scored)), "sd": float(np.std(scored, ddof=1))}
                if len(scored) > 1
                else None
            )
    return summary

"""Scores of a detector on a slide with known truth (seed 000 §2.7, seed 001 Table 1)."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from napari_cpadv.inference.heatmap import Heatmap, heatmap
from napari_cpadv.models.detector import Detector
from napari_cpadv.progress import Work
from napari_cpadv.slide.slide import Slide


def cell_labels(slide: Slide, annotations: Any, level: int, shape: tuple[int, int]) -> np.ndarray:
    """Binary cell labels of the level's cell grid, cropped or NaN-free padded to ``shape``."""
    from napari_cpadv.annotations.raster import cell_grid
    from napari_cpadv.geometry import Grid

    # float32 fractions and uint8 labels, one each per 4 x 4 pixels
    slide.check_in_memory(level, "the cell labels of a whole level", bytes_per_pixel=5 / 16)
    g0, g = slide.geometry[0], slide.geometry[level]
    _, label = cell_grid(annotations, Grid.of_level((g0.rows, g0.cols), (g.rows, g.cols)))
    out = np.zeros(shape, np.uint8)
    r, c = min(shape[0], label.shape[0]), min(shape[1], label.shape[1])
    out[:r, :c] = label[:r, :c]
    return out


def score_cells(
    hm: Heatmap, labels: np.ndarray, *, valid: np.ndarray | None = None
) -> dict[str, Any]:
    """AUC-PR of a cell heatmap (cells left NaN are not scored)."""
    from napari_cpadv.metrics.scores import aucpr

    keep = np.isfinite(hm.logits)
    if valid is not None:
        keep &= valid
    return aucpr(labels, hm.logits, valid=keep).to_json()


def nuclei_called(
    hm: Heatmap, slide: Slide, level: int, truth: str | os.PathLike[str]
) -> dict[str, Any]:
    """Of ``truth``'s nuclei, the share called tumour: the cell (or patch) holding a
    nucleus' centre has probability > 0.5. Tumour nuclei (the share is the sensitivity)
    and the others (the false-positive share) apart; nuclei under no computed cell are
    counted, not scored. On a field with no tumour (a negative control) this is the score
    where AUC-PR and AUC-ROC are undefined."""
    from napari_cpadv.annotations.dataset import read_nuclei

    x, y, tumour = read_nuclei(truth)
    side = hm.cell * float(slide.downsamples[level])
    r = np.floor(y / side).astype(int) - hm.origin[0]
    c = np.floor(x / side).astype(int) - hm.origin[1]
    inside = (r >= 0) & (r < hm.logits.shape[0]) & (c >= 0) & (c < hm.logits.shape[1])
    logit = np.full(x.shape, np.nan, np.float32)
    logit[inside] = hm.logits[r[inside], c[inside]]
    scored = np.isfinite(logit)

    def share(which: np.ndarray) -> dict[str, Any]:
        n = int((which & scored).sum())
        called = float((logit[which & scored] > 0).mean()) if n else None
        return {"nuclei": n, "called_tumour": called}

    return {
        "threshold": 0.5,
        "tumour": share(tumour),
        "other": share(~tumour),
        "not_scored": int((~scored).sum()),
    }


def patch_labels(
    slide: Slide, truth: str | os.PathLike[str], level: int, cell: int, shape: tuple[int, int]
) -> np.ndarray:
    """Seed 001's labels on a patch grid: 1 with ≥ 5 tumour nuclei, 0 with none, -1 else."""
    from napari_cpadv.annotations.dataset import read_nuclei
    from napari_cpadv.models.data import POSITIVE_NUCLEI

    x, y, tumour = read_nuclei(truth)
    side = cell * float(slide.downsamples[level])
    r = np.floor(y / side).astype(int)
    c = np.floor(x / side).astype(int)
    ok = (r >= 0) & (r < shape[0]) & (c >= 0) & (c < shape[1])
    count = np.zeros(shape, np.int64)
    np.add.at(count, (r[ok & tumour], c[ok & tumour]), 1)
    labels = np.full(shape, -1, np.int8)
    labels[count == 0] = 0
    labels[count >= POSITIVE_NUCLEI] = 1
    return labels


def evaluate(
    detector: Detector,
    slide: Slide,
    *,
    level: int,
    annotations: Any = (),
    truth: str | os.PathLike[str] | None = None,
    scope: str = "tissue",
    device: Any = "cpu",
) -> Work[dict[str, Any]]:
    """Run ``detector`` over ``scope`` of ``slide`` and score it.

    Cell detectors: AUC-PR against the annotations' cell labels, with the null model.
    Classifiers: AUC-ROC and accuracy on full tissue patches labelled by seed 001's rule from
    the ``truth`` nuclei (patches with 1 to 4 tumour nuclei are left out). With ``truth``,
    either also gets the share of tumour and other nuclei called tumour
    (``nuclei_called``); a slide without tumour (a negative control) gets that alone, its
    AUC ``None``.
    """
    from napari_cpadv.metrics.scores import accuracy, aucroc

    hm = yield from heatmap(detector, slide, level=level, scope=scope, device=device)  # type: ignore[arg-type]
    result: dict[str, Any] = {
        "detector": detector.name,
        "slide": str(slide.path),
        "level": level,
        "scope": scope,
    }
    if truth is not None:
        result["nuclei_called"] = nuclei_called(hm, slide, level, truth)
    if detector.output == "cells":
        labels = cell_labels(slide, annotations, level, hm.logits.shape)
        if truth is not None and not (labels.astype(bool) & np.isfinite(hm.logits)).any():
            # a negative control: no tumour cell was scored
            result.update(aucpr=None, null_aucpr=None, n_positive=0)
        else:
            result.update(score_cells(hm, labels))
        return result
    if truth is None:
        raise ValueError("a classifier is scored on nuclei counts: give the slide's truth JSON")
    g = slide.geometry[level]
    full = np.zeros(hm.logits.shape, bool)
    full[: g.rows // hm.cell, : g.cols // hm.cell] = True  # whole patches only
    labels = patch_labels(slide, truth, level, hm.cell, hm.logits.shape)
    keep = full & (labels >= 0) & np.isfinite(hm.logits)
    keep &= _tissue(slide, level, hm.cell, keep)
    y, s = labels[keep], hm.logits[keep]
    result.update(
        aucroc=aucroc(y, s) if 0 < y.sum() < y.size else None,  # one class: undefined
        accuracy=accuracy(y, s),
        n_patches=int(keep.sum()),
        n_positive=int(y.sum()),
    )
    return result


def _tissue(slide: Slide, level: int, cell: int, where: np.ndarray) -> np.ndarray:
    """Of the patches in ``where``, those whose mean colour passes seed 000's hue rule."""
    from napari_cpadv.slide.tissue import tile_is_tissue

    out = np.zeros(where.shape, bool)
    for r, c in zip(*np.nonzero(where), strict=True):
        out[r, c] = tile_is_tissue(slide.read_region(level, r * cell, c * cell, cell, cell))
    return out

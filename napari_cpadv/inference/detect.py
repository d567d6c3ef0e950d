"""What the Detect widget asks for, as a plain object the tests drive without a viewer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from napari_cpadv.inference.heatmap import Heatmap, Window, cells_of_box, heatmap
from napari_cpadv.models.detector import Detector
from napari_cpadv.progress import Work
from napari_cpadv.slide.slide import Slide

DetectScope = Literal["view", "rectangle", "tissue", "pan"]
SCOPES: tuple[DetectScope, ...] = ("view", "rectangle", "tissue", "pan")


@dataclass
class DetectModel:
    """A detector (shipped or from ``weights``), a scope and a level.

    ``view`` and ``rectangle`` run on a box given in level-0 pixels; ``tissue`` on every
    tissue block of the level; ``pan`` gives an ``OnDemandHeatmap`` that computes the
    blocks napari asks for as the user pans, cached on disk.
    """

    detector: str = "dae"
    weights: str | None = None
    scope: DetectScope = "view"
    level: int = 2
    device: str | None = None

    def load(self) -> Any:
        from napari_cpadv.models.weights import resolve

        return resolve(self.detector, self.weights or None)

    def area(self, slide: Slide, box: tuple[float, float, float, float], cell: int) -> Window:
        """Cells of ``level`` covering a level-0 box ``(row0, col0, row1, col1)``."""
        return cells_of_box(slide, self.level, cell, box)

    def on_demand(
        self, slide: Slide, *, detector: Detector | None = None, cache: Any = None
    ) -> Any:
        """The whole level as an ``OnDemandHeatmap`` (cache: the user cache by default)."""
        import json

        from platformdirs import user_cache_dir

        from napari_cpadv.device import pick_device
        from napari_cpadv.inference.ondemand import OnDemandHeatmap
        from napari_cpadv.models.weights import paths, shipped

        det = detector if detector is not None else self.load()
        config = paths(self.weights or shipped(self.detector))[1]
        sha = json.loads(config.read_text())["sha256"] if config.is_file() else "unsaved"
        folder = cache or f"{user_cache_dir('napari-cpadv')}/heatmaps"
        device = pick_device(self.device)
        return OnDemandHeatmap(det, slide, self.level, cache=folder, weights_sha=sha, device=device)

    def work(
        self,
        slide: Slide,
        *,
        box: tuple[float, float, float, float] | None = None,
        detector: Detector | None = None,
    ) -> Work[Heatmap]:
        """The heatmap generator for this request (``box`` for the view and rectangle)."""
        from napari_cpadv.device import pick_device

        slide.check_level(self.level)
        det = detector if detector is not None else self.load()
        device = pick_device(self.device)
        if self.scope == "tissue":
            return heatmap(det, slide, level=self.level, scope="tissue", device=device)
        if box is None:
            raise ValueError(f"scope {self.scope!r} needs a box")
        return heatmap(
            det,
            slide,
            level=self.level,
            scope="region",
            area=self.area(slide, box, det.cell),
            device=device,
        )


def score_against(hm: Heatmap, slide: Slide, annotations: Any) -> dict[str, Any] | None:
    """AUC-PR of a cell heatmap against annotations over the cells it computed, with the
    (thinned) PR curve; None when it is not a cell heatmap or the window holds no tumour
    cell."""
    from napari_cpadv.annotations.raster import cell_grid
    from napari_cpadv.geometry import Grid
    from napari_cpadv.metrics.scores import aucpr

    if hm.cell != 4:
        return None
    g0, g = slide.geometry[0], slide.geometry[hm.level]
    grid = Grid.of_level((g0.rows, g0.cols), (g.rows, g.cols))
    rows, cols = hm.logits.shape
    window = grid.window(
        hm.origin[0] * hm.cell, hm.origin[1] * hm.cell, rows * hm.cell, cols * hm.cell
    )
    _, label = cell_grid(annotations, window)
    valid = np.isfinite(hm.logits[: label.shape[0], : label.shape[1]])
    logits = hm.logits[: label.shape[0], : label.shape[1]]
    if not label[valid].any():
        return None
    s = aucpr(label, logits, valid=valid)
    return {
        "aucpr": s.aucpr,
        "null_aucpr": s.null_aucpr,
        "n_cells": s.n_cells,
        "precision": s.precision.tolist(),
        "recall": s.recall.tolist(),
    }


UM_TOLERANCE = 1.4  # a level more than this factor finer or coarser than the training's


def resolution_warning(
    name: str, weights: str | None, slide: Slide, level: int, output: str = "cells"
) -> str | None:
    """A warning when ``slide`` is far from what ``name``'s weights learnt from, or
    ``None``: real tissue for weights trained on painted slides (or the reverse), and, for
    cell detectors, a level whose µm per pixel is more than ``UM_TOLERANCE`` times off the
    training's (where the weights or the slide do not say, another level than the trained
    one). Classifiers of level-0 patches get only the first."""
    from napari_cpadv.errors import CpadvError
    from napari_cpadv.models.origin import training_origin
    from napari_cpadv.models.weights import read_config, shipped

    try:
        origin = training_origin(read_config(shipped(name) if weights is None else weights))
    except (CpadvError, OSError, ValueError):  # unreadable weights are refused where loaded
        origin = {"tissue": None, "um_per_pixel": None}
    parts = [_tissue_warning(name, origin.get("tissue"), slide)]
    if output == "cells":
        parts.append(_scale_warning(name, weights, origin.get("um_per_pixel"), slide, level))
    return "; ".join(p for p in parts if p) or None


def _tissue_warning(name: str, tissue: str | None, slide: Slide) -> str | None:
    from napari_cpadv.slide.synthetic import is_painted

    painted = is_painted(slide)
    if tissue == "synthetic" and not painted:
        from napari_cpadv.models.weights import shipped_names

        real = [n for n in shipped_names(name) if n.endswith("-he")]
        return (
            f"{name}'s weights learnt from synthetic (painted) slides, and this is real "
            "tissue: its heatmap and scores say little about this slide"
            + (f" (weights {real[0]!r} learnt from real H&E)" if real else "")
        )
    if tissue == "real" and painted:
        return f"{name}'s weights learnt from real tissue, and this slide is painted"
    return None


def _scale_warning(
    name: str, weights: str | None, um: float | None, slide: Slide, level: int
) -> str | None:
    here = slide.level_scale(level) if level < len(slide.geometry) else None
    if um and here:
        ratio = here[1] / um
        if 1 / UM_TOLERANCE <= ratio <= UM_TOLERANCE:
            return None
        size = "smaller" if ratio > 1 else "larger"  # a coarser level: fewer pixels a cell
        return (
            f"{name}'s weights learnt from {um:.2f} µm per pixel; level {level} of this slide "
            f"is {here[1]:.2f} µm per pixel: it sees cells {max(ratio, 1 / ratio):.1f} times "
            f"{size} than it was trained on"
        )
    return _level_warning(name, weights, slide, level)


def _level_warning(name: str, weights: str | None, slide: Slide, level: int) -> str | None:
    from napari_cpadv.models.weights import trained_level

    trained = trained_level(name, weights)
    if trained is None or trained == level:
        return None

    def mpp(k: int, where: str = "") -> str:
        scale = slide.level_scale(k) if k < len(slide.geometry) else None
        return f" ({scale[1]:.2f} µm per pixel{where})" if scale else ""

    return (
        f"{name}'s weights were trained at level {trained}{mpp(trained, ' on this slide')}; "
        f"at level {level}{mpp(level)} it sees cells at another size, and its heatmap and "
        "AUC-PR are not what it was trained for"
    )

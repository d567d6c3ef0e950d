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


def resolution_warning(
    name: str, weights: str | None, slide: Slide, level: int, output: str = "cells"
) -> str | None:
    """A warning when ``name`` runs at another level than its weights were trained at
    (their config records it), or ``None``. Classifiers of level-0 patches are not
    warned about."""
    from napari_cpadv.models.weights import trained_level

    trained = trained_level(name, weights)
    if output != "cells" or trained is None or trained == level:
        return None

    def mpp(k: int, where: str = "") -> str:
        scale = slide.level_scale(k) if k < len(slide.geometry) else None
        return f" ({scale[1]:.2f} µm per pixel{where})" if scale else ""

    return (
        f"{name}'s weights were trained at level {trained}{mpp(trained, ' on this slide')}; "
        f"at level {level}{mpp(level)} it sees cells at another size, and its heatmap and "
        "AUC-PR are not what it was trained for"
    )

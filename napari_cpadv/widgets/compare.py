"""Original against adversarial in the viewer: flip in place, blink, side by side.

Uses napari's public API only. The adversarial slide layer sits above the original with
the same scale, so flipping is showing or hiding it: the camera does not move and neither
layer's tiles are read again. Side by side is napari's grid mode, which draws each group
of ``stride`` consecutive layers in its own cell through the viewer's one camera, so pan
and zoom stay in step. Each cell is a panel: the original, the adversarial slide, and each
with its heatmap (before, after) when the run has them; every panel shows the ground
truth's outline over its image and a label saying what it is. The panels' extra layers
(second slide layers on the same data, outline copies, labels) exist only while side by
side is on; turning it off restores the layer list as it was.
"""

from __future__ import annotations

from typing import Any

from qtpy.QtCore import QTimer

FLIP_KEY = "F"


class Comparison:
    """The original/adversarial pair of a viewer and the ways to compare them."""

    def __init__(self, viewer: Any) -> None:
        self.viewer = viewer
        self.original: Any = None
        self.adversarial: Any = None
        self.heatmaps: tuple[Any, Any] | None = None
        self.panels: list[str] = []  # the grid's panels while side by side is on
        self._helpers: list[Any] = []
        self._saved: list[tuple[Any, bool]] = []
        self.timer = QTimer()
        self.timer.timeout.connect(self._tick)
        viewer.bind_key(FLIP_KEY, lambda _viewer: self.flip(), overwrite=True)

    def _tick(self) -> None:
        self.flip()

    def set_pair(
        self, original: Any, adversarial: Any, heatmaps: tuple[Any, Any] | None = None
    ) -> None:
        """The pair to compare, and the attacked detector's heatmaps (before, after)."""
        self.original, self.adversarial = original, adversarial
        self.heatmaps = heatmaps
        original.visible = True

    def ready(self) -> bool:
        layers = self.viewer.layers
        return (
            self.original is not None
            and self.adversarial is not None
            and self.original in layers
            and self.adversarial in layers
        )

    def showing(self) -> str | None:
        """``"adversarial"`` or ``"original"``: which one the viewer shows in place."""
        if not self.ready():
            return None
        return "adversarial" if self.adversarial.visible else "original"

    def flip(self) -> str | None:
        """Swap what is shown; returns what is shown now."""
        if not self.ready():
            self.blink(False)
            return None
        self.adversarial.visible = not self.adversarial.visible
        return self.showing()

    def blink(self, on: bool, rate_hz: float = 2.0) -> None:
        """Alternate the two ``rate_hz`` times a second (each shown for 1/rate s)."""
        if on and self.ready():
            self.timer.start(max(20, int(1000 / rate_hz)))
        else:
            self.timer.stop()

    @property
    def grid_enabled(self) -> bool:
        return bool(self._grid().enabled)

    def _grid(self) -> Any:
        canvas: Any = getattr(self.viewer, "canvas", None)
        return canvas.grid if hasattr(canvas, "grid") else self.viewer.grid  # napari 0.9 moved it

    @property
    def blinking(self) -> bool:
        return self.timer.isActive()

    def side_by_side(self, on: bool) -> None:
        """napari's grid, one panel a cell, one shared camera (see the module docstring)."""
        grid = self._grid()
        if on and not grid.enabled:
            self.blink(False)
            if self.ready():
                self._arrange()
            else:
                grid.stride = -1  # no run yet: every layer in its own cell
        elif not on and grid.enabled:
            self._restore()
        grid.enabled = on

    def _arrange(self) -> None:
        layers = self.viewer.layers
        self._saved = [(la, la.visible) for la in layers]
        truth = next((la for la in layers if la.name.startswith("ground truth")), None)
        panels: list[tuple[str, Any, Any]] = [
            ("original", self.original, None),
            ("adversarial", self.adversarial, None),
        ]
        if self.heatmaps is not None and all(h in layers for h in self.heatmaps):
            before, after = self.heatmaps
            panels += [
                (before.name.split(": ", 1)[-1], self._copy(self.original), before),
                (after.name.split(": ", 1)[-1], self._copy(self.adversarial), after),
            ]
        corner = self._corner()
        order: list[Any] = []
        for name, image, overlay in panels:
            outline = self._outline(truth) if truth is not None else self._filler()
            label = self._label(name, corner)
            order += [image, overlay if overlay is not None else self._filler(), outline, label]
        self.panels = [name for name, _, _ in panels]
        for k, layer in enumerate(order):  # the panels first, then everything else hidden
            layers.move(list(layers).index(layer), k)
            layer.visible = not layer.metadata.get("cpadv_filler", False)
        for layer in list(layers)[len(order) :]:
            layer.visible = False
        self._grid().stride = 4

    def _restore(self) -> None:
        layers = self.viewer.layers
        for layer in self._helpers:
            if layer in layers:
                layers.remove(layer)
        self._helpers = []
        for k, (layer, visible) in enumerate(self._saved):
            if layer in layers:
                layers.move(list(layers).index(layer), k)
                layer.visible = visible
        self._saved, self.panels = [], []
        self._grid().stride = 1

    def _helper(self, layer: Any) -> Any:
        self._helpers.append(layer)
        return layer

    def _copy(self, layer: Any) -> Any:
        """A second layer on the same data (napari draws a layer in one cell only)."""
        return self._helper(
            self.viewer.add_image(
                layer.data,
                name=f"{layer.name} (side by side)",
                rgb=layer.rgb,
                multiscale=layer.multiscale,
                scale=layer.scale,
                translate=layer.translate,
                units=layer.units,
                contrast_limits=layer.contrast_limits,
                metadata={"cpadv_side_by_side": True},
            )
        )

    def _outline(self, truth: Any) -> Any:
        copy = self.viewer.add_shapes(
            truth.data,
            shape_type=truth.shape_type,
            edge_color=truth.edge_color,
            face_color="transparent",
            edge_width=truth.edge_width,
            scale=truth.scale,
            translate=truth.translate,
            units=truth.units,
            name=f"{truth.name} (side by side)",
            metadata={**truth.metadata, "cpadv_side_by_side": True},
        )
        return self._helper(copy)

    def _label(self, text: str, corner: tuple[float, float]) -> Any:
        return self._helper(
            self.viewer.add_points(
                [corner],
                name=f"label: {text}",
                size=1,
                face_color="transparent",
                border_width=0,
                text={"string": [text], "anchor": "upper_left", "size": 12, "color": "black"},
                units=self.original.units,
                metadata={"cpadv_side_by_side": True},
            )
        )

    def _filler(self) -> Any:
        """An empty, hidden layer that keeps a panel at four layers (the grid's stride)."""
        return self._helper(
            self.viewer.add_points(
                name="(side by side)",
                ndim=2,
                visible=False,
                units=self.original.units,
                metadata={"cpadv_filler": True, "cpadv_side_by_side": True},
            )
        )

    def _corner(self) -> tuple[float, float]:
        """The world position just inside the top-left of the current view."""
        import numpy as np

        cam = getattr(self.viewer, "scene", self.viewer).camera
        canvas = getattr(self.viewer, "canvas", None)
        size = np.asarray(getattr(canvas, "size", (600, 800)), dtype=float)[-2:]
        half = size / (2 * cam.zoom)
        centre = np.asarray(cam.center, dtype=float)[-2:]
        r, c = centre - 0.9 * half
        return float(r), float(c)

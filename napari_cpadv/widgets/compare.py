"""Original against adversarial in the viewer: flip in place, blink, side by side.

Uses napari's public API only. The adversarial slide layer sits above the original with
the same scale, so flipping is showing or hiding it: the camera does not move and neither
layer's tiles are read again. Side by side is napari's grid mode, which draws each group
of ``stride`` consecutive layers in its own cell through the viewer's one camera, so pan
and zoom stay in step. Each cell is a panel: the original, the adversarial slide, and each
with its heatmap (before, after) when the run has them; every panel shows the ground
truth's outline over its image and a label saying what it is. The panels' extra layers
(second slide layers on the same data, outline copies, labels) exist only while side by
side is on; turning it off restores the layer list as it was. Both go one layer per turn
of the event loop, so the viewer stays live while they do.
"""

from __future__ import annotations

from typing import Any

from qtpy.QtCore import QTimer

from napari_cpadv.widgets._view import camera
from napari_cpadv.widgets._work import in_turns

FLIP_KEY = "F"
LABEL_PX = 13  # the panels' labels: text size in screen pixels, light on dark
LABEL_TEXT = "#f5f5f5"
LABEL_BACKDROP = "#1b1b1bd9"  # RGBA: dark, 85 % opaque


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
        self._bars: list[tuple[Any, Any]] = []  # heatmaps' colour bars and where they were
        self.busy = False  # side by side's panels are being built or taken down
        self._wanted = False
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
        self._heatmaps_follow()
        return self.showing()

    def _heatmaps_follow(self) -> None:
        """The attacked detector's heatmap of what is shown: after over the adversarial
        slide, before over the original (when either is shown at all)."""
        layers = self.viewer.layers
        if self.heatmaps is None or not all(h in layers for h in self.heatmaps):
            return
        before, after = self.heatmaps
        if before.visible or after.visible:
            after.visible = self.adversarial.visible
            before.visible = not self.adversarial.visible

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
        """napari's grid, one panel a cell, one shared camera (see the module docstring).

        The panels are built, and taken down, one layer per turn of the event loop
        (``in_turns``), so the GUI thread stalls for one layer at a time; the grid turns on
        when the last panel is in. ``busy`` says while this goes on; a toggle meanwhile
        is applied when it is done."""
        self._wanted = on
        grid = self._grid()
        if self.busy or on == grid.enabled:
            return
        if not on:
            grid.enabled = False
            self._restore()
            return
        self.blink(False)
        if self.ready():
            self._arrange()
        else:
            grid.stride = -1  # no run yet: every layer in its own cell
            grid.enabled = True

    def _done(self) -> None:
        self.busy = False
        if self._wanted != self._grid().enabled:
            self.side_by_side(self._wanted)

    def _arrange(self) -> None:
        layers = self.viewer.layers
        self._saved = [(la, la.visible) for la in layers]
        self._bars = [(la, la.colorbar.position) for la in layers if getattr(la, "colorbar", None)]
        truth = next((la for la in layers if la.name.startswith("ground truth")), None)
        panels: list[tuple[str, Any, Any]] = [
            ("original", lambda: self.original, None),
            ("adversarial", lambda: self.adversarial, None),
        ]
        if self.heatmaps is not None and all(h in layers for h in self.heatmaps):
            before, after = self.heatmaps
            panels += [
                (before.name.split(": ", 1)[-1], lambda: self._copy(self.original), before),
                (after.name.split(": ", 1)[-1], lambda: self._copy(self.adversarial), after),
            ]
        corner = self._corner(len(panels))
        slots: list[Any] = []
        for name, image, overlay in panels:
            outline = (lambda: self._outline(truth)) if truth is not None else self._filler
            slots += [image, (lambda o=overlay: o) if overlay is not None else self._filler]
            slots += [outline, lambda n=name: self._label(n, corner)]

        def place(k: int, make: Any) -> Any:
            def step() -> None:
                layer = make()
                if layer.metadata.get("cpadv_side_by_side"):
                    layers.insert(min(k, len(layers)), self._helper(layer))
                elif layer not in layers:
                    return  # removed meanwhile: its panel is short of it
                elif layers.index(layer) != k:
                    layers.move(layers.index(layer), k)
                if getattr(layer, "colorbar", None) is not None:
                    # a panel's label is in its top-left corner, the scale bar in the
                    # canvas's bottom right: the colour bar goes bottom left (at the top
                    # right a long label such as "dae heatmap before" ran under it)
                    layer.colorbar.position = "bottom_left"
                layer.visible = not layer.metadata.get("cpadv_filler", False)

            return step

        def hide_the_rest() -> None:
            for layer in list(layers)[len(slots) :]:  # the run's other layers, hidden
                layer.visible = False

        def finish() -> None:
            self.panels = [name for name, _, _ in panels]
            self._grid().stride = 4
            self._grid().enabled = True
            cam = camera(self.viewer)
            cam.events.zoom.connect(self.fit_labels)
            cam.events.center.connect(self.fit_labels)
            self.fit_labels()
            self._done()

        self.busy = True
        steps = [place(k, make) for k, make in enumerate(slots)] + [hide_the_rest]
        in_turns(steps, then=finish)

    def _restore(self) -> None:
        """The layer list as before side by side (called once napari's grid is off)."""
        layers = self.viewer.layers
        cam = camera(self.viewer)
        cam.events.zoom.disconnect(self.fit_labels)
        cam.events.center.disconnect(self.fit_labels)
        helpers, self._helpers = self._helpers, []
        saved, self._saved = self._saved, []
        bars, self._bars = self._bars, []
        for layer, position in bars:
            layer.colorbar.position = position
        for helper in helpers:  # the slide copies, not drawn stacked on the way out (with
            if helper.metadata.get("cpadv_copy"):  # the grid off: each hide costs napari a
                helper.visible = False  # scene-graph update, quadratic while it is on)

        def remove(layer: Any) -> Any:
            return lambda: layers.remove(layer) if layer in layers else None

        def put_back(layer: Any, visible: bool) -> Any:
            def step() -> None:
                if layer not in layers:
                    return  # removed meanwhile
                k = [la for la, _ in saved if la in layers].index(layer)
                if layers.index(layer) != k:
                    layers.move(layers.index(layer), k)
                layer.visible = visible

            return step

        def finish() -> None:
            self.panels = []
            self._grid().stride = 1
            self._done()

        self.busy = True
        steps = [remove(la) for la in helpers]
        steps += [put_back(la, v) for la, v in saved]
        in_turns(steps, then=finish)

    def _helper(self, layer: Any) -> Any:
        self._helpers.append(layer)
        return layer

    def _copy(self, layer: Any) -> Any:
        """A second layer on the same data (napari draws a layer in one cell only)."""
        from napari.layers import Image

        return Image(
            layer.data,
            name=f"{layer.name} (side by side)",
            rgb=layer.rgb,
            multiscale=layer.multiscale,
            scale=layer.scale,
            translate=layer.translate,
            units=layer.units,
            contrast_limits=layer.contrast_limits,
            metadata={"cpadv_side_by_side": True, "cpadv_copy": True},
        )

    def _outline(self, truth: Any) -> Any:
        from napari.layers import Shapes

        return Shapes(
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

    def _label(self, text: str, corner: tuple[float, float]) -> Any:
        """A panel's name in light text on a dark backdrop inside its top-left corner:
        readable over glass, tissue and napari's black canvas alike (contrast at least
        4.5:1 over either)."""
        from napari.layers import Shapes

        return Shapes(
            [self._label_box(text, corner)],
            shape_type="rectangle",
            name=f"label: {text}",
            face_color=LABEL_BACKDROP,
            edge_width=0,
            text={"string": [text], "anchor": "center", "size": LABEL_PX, "color": LABEL_TEXT},
            units=self.original.units,
            metadata={"cpadv_side_by_side": True},
        )

    def _label_box(self, text: str, corner: tuple[float, float]) -> list[list[float]]:
        """The backdrop of a label of ``text`` at ``corner``, in world units at the
        camera's zoom now (its text is sized in screen pixels)."""
        cam = camera(self.viewer)
        px = 1.0 / float(cam.zoom)  # world units of one screen pixel
        r, c = corner
        # napari draws text of size LABEL_PX up to about its size a character wide
        # (measured on the demo's screenshots: 0.62 and 0.8 left the ends of the words
        # outside the box)
        h, w = LABEL_PX * 1.8 * px, LABEL_PX * (len(text) + 1.0) * px
        return [[r, c], [r, c + w], [r + h, c + w], [r + h, c]]

    def fit_labels(self, *_: Any) -> None:
        """Keep each panel's label in its top-left corner, its backdrop around its text,
        as the shared camera zooms and pans (the backdrop is in world units, the text in
        screen pixels: a zoom out left the text over the image beside a small box)."""
        labels = [h for h in self._helpers if h.name.startswith("label: ")]
        labels = [la for la in labels if la in self.viewer.layers]
        if not labels or not self.panels:
            return
        corner = self._corner(len(self.panels))
        for la in labels:
            la.data = [self._label_box(la.name[len("label: ") :], corner)]

    def _filler(self) -> Any:
        """An empty, hidden layer that keeps a panel at four layers (the grid's stride)."""
        from napari.layers import Points

        return Points(
            name="(side by side)",
            ndim=2,
            visible=False,
            units=self.original.units,
            metadata={"cpadv_filler": True, "cpadv_side_by_side": True},
        )

    def _corner(self, panels: int = 1) -> tuple[float, float]:
        """The world position just inside the top-left of what one of ``panels`` grid
        cells shows (napari's grid: columns ceil(sqrt(n)), rows to fit, one camera)."""
        import math

        import numpy as np

        cam = camera(self.viewer)
        canvas = getattr(self.viewer, "canvas", None)
        size = np.asarray(getattr(canvas, "size", (600, 800)), dtype=float)[-2:]
        cols = math.ceil(math.sqrt(panels))
        size = size / (math.ceil(panels / cols), cols)
        half = size / (2 * cam.zoom)
        centre = np.asarray(cam.center, dtype=float)[-2:]
        r, c = centre - 0.9 * half
        return float(r), float(c)

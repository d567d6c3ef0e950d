"""Original against adversarial in the viewer: flip in place, blink, side by side.

Uses napari's public API only. The adversarial slide layer sits above the original with
the same scale, so flipping is showing or hiding it: the camera does not move and neither
layer's tiles are read again. Side by side is napari's grid mode, which draws every layer
in its own cell through the viewer's one camera, so pan and zoom stay in step.
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
        self.timer = QTimer()
        self.timer.timeout.connect(self._tick)
        viewer.bind_key(FLIP_KEY, lambda _viewer: self.flip(), overwrite=True)

    def _tick(self) -> None:
        self.flip()

    def set_pair(self, original: Any, adversarial: Any) -> None:
        self.original, self.adversarial = original, adversarial
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
        """napari's grid, one cell per layer (the original first, in layer-list order from
        the bottom), one shared camera; the adversarial slide is shown in its own cell."""
        grid = self._grid()
        if on:
            self.blink(False)
            if self.ready():
                self.adversarial.visible = True
            grid.stride = -1  # bottom layer (the original) in the top-left cell
        grid.enabled = on

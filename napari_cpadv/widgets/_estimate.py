"""How long an attack run will take here, said before Run: one attack step of the detector
timed on this machine (off the GUI thread, once per setup), times the steps of the planned
tiles, plus the heatmaps before and after (``workbench.attack.estimate_seconds``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class Estimator:
    """One dock's estimates; the seconds of a step are kept by detector, weights, tile side
    and device."""

    def __init__(self, owner: Any) -> None:
        self.step_s: dict[tuple[Any, ...], float] = {}
        self.worker: Any = None
        self.owner = owner  # a step timed after it (the dock) is gone says nothing

    def estimate(
        self,
        model: Any,
        tiles: int,
        scored: int,
        say: Callable[[float, str], None],
        failed: Callable[[Exception], None],
    ) -> None:
        """Call ``say(seconds, words)`` with the estimate of a run of ``model`` (a copy of
        the dock's ``AttackModel``) over ``tiles`` tiles scored by ``scored`` detectors."""
        from napari.qt.threading import create_worker

        from napari_cpadv.device import pick_device
        from napari_cpadv.widgets._work import while_alive
        from napari_cpadv.workbench.attack import estimate_seconds

        device = pick_device(model.device)
        key = (model.detector, model.weights, model.tile, str(device))

        def done(step: float) -> None:
            self.step_s[key] = step
            seconds = estimate_seconds(model, tiles, step, scored)
            say(seconds, f"about {duration(seconds)} on {device} ({model.attack}, "
                         f"{model.steps} steps; one step {step:.2f} s a tile here)")  # fmt: skip

        if key in self.step_s:
            done(self.step_s[key])
            return

        def measure() -> float:
            from napari_cpadv.experiments.tiles import tile_side
            from napari_cpadv.workbench.attack import pass_seconds

            detector = model.load()
            return pass_seconds(detector, tile_side(detector, model.tile), device)

        self.worker = create_worker(measure)
        self.worker.returned.connect(while_alive(self.owner, done))
        self.worker.errored.connect(while_alive(self.owner, failed))
        self.worker.start()


def duration(seconds: float) -> str:
    """``"40 s"``, ``"3 min"``, ``"2 h 10 min"``: a run's estimate in words."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{int(seconds // 3600)} h {seconds % 3600 / 60:.0f} min"

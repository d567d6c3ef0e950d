"""The one bridge from a core generator (``progress.Work``) to a napari thread worker."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from qtpy.QtCore import QTimer
from qtpy.QtWidgets import QProgressBar, QPushButton

from napari_cpadv.progress import SCALE, Cancelled, Progress, Work, cancellable
from napari_cpadv.widgets._collector import settle

TURN_MS = 15
"""The pause between two steps of ``in_turns`` (ms): long enough that Qt runs its timers,
input and the repaint of the last step between them."""


def in_turns(
    steps: Iterable[Callable[[], object]], then: Callable[[], object] = lambda: None
) -> None:
    """Run ``steps`` on the GUI thread one per turn of the event loop, then ``then``.

    Each step (adding one layer, say) is its own stall of the GUI thread, never the sum
    of them, nor added to the caller's: each is scheduled ``TURN_MS`` after the last, so
    the viewer repaints and the user's input is handled in between. (A zero-delay single
    shot would not do: in Qt 5 it is a posted event, and posted events queued back to
    back run before any timer or paint.)
    """
    todo = iter(steps)

    def turn() -> None:
        step = next(todo, None)
        if step is None:
            then()
            return
        step()
        QTimer.singleShot(TURN_MS, turn)

    QTimer.singleShot(TURN_MS, turn)


def while_alive(owner: Any, fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn``, made a no-op once ``owner`` (a QObject: a dock) is destroyed: for a
    worker's answer that may arrive after its dock closed (its labels deleted)."""
    gone: list[bool] = []
    owner.destroyed.connect(lambda *_: gone.append(True))
    return lambda *args: None if gone else fn(*args)


def start(
    make_work: Callable[[], Work[Any]],
    *,
    bar: QProgressBar,
    cancel: QPushButton,
    on_done: Callable[[Any], None],
    on_error: Callable[[Exception], None],
    on_finish: Callable[[], None] = lambda: None,
    label: str = "cpadv",
) -> Any:
    """Run ``make_work()`` off the GUI thread; the bar follows it, ``cancel`` stops it.

    The bar shows the run's fraction done (monotone: see ``progress.within``) with the time
    left, mirrored in napari's activity panel under ``label``. Cancelling stops the
    generator at its next yield, or a loop inside it at its next ``progress.check``;
    nothing is delivered to ``on_done``. A refusal of the request (``CpadvError``,
    ``ValueError``, ``OSError``: bad input, not a bug) goes to ``on_error`` alone; anything
    else also reaches napari's error handler. After a failure the bar is reset: it never
    reads 100 % for a run that did not finish. Returns the started worker.
    """
    from napari.qt.threading import thread_worker

    from napari_cpadv.errors import CpadvError

    holder: dict[str, Any] = {}

    @thread_worker
    def run() -> Any:
        try:
            with cancellable(lambda: bool(holder["worker"].abort_requested)):
                return (yield from make_work())
        except Cancelled:
            return _Cancelled()
        except (CpadvError, ValueError, OSError) as exc:
            return _Refused(exc)

    shown = _Shown(bar, label)

    def done(value: Any) -> None:
        if isinstance(value, _Refused):
            failed(value.error)
        elif not isinstance(value, _Cancelled):
            bar.setValue(bar.maximum())
            on_done(value)

    def failed(exc: Exception) -> None:
        bar.reset()
        on_error(exc)

    def finish() -> None:
        settle()  # what the run made, out of later collections (see _collector)
        shown.close()
        cancel.setEnabled(False)
        on_finish()

    worker = run()
    holder["worker"] = worker
    worker.yielded.connect(shown.show)
    worker.returned.connect(done)
    worker.errored.connect(failed)
    worker.finished.connect(finish)
    cancel.clicked.connect(worker.quit)
    cancel.setEnabled(True)
    worker.start()
    QTimer.singleShot(0, shown.make_activity)
    return worker


class _Shown:
    """A run's progress as the dock's bar shows it (monotone, with the time left) and as
    napari's activity panel does; the panel's bar is made in the next event-loop turn
    (making it costs a quarter of a second)."""

    def __init__(self, bar: QProgressBar, label: str) -> None:
        self.bar, self.label = bar, label
        self.activity: list[Any] = []
        self.started = time.perf_counter()
        self.finished = False
        bar.setRange(0, SCALE)
        bar.setValue(0)
        bar.setFormat("%p%")

    def make_activity(self) -> None:
        from napari.utils import progress

        if not self.finished:
            self.activity.append(progress(total=SCALE, desc=self.label))

    def show(self, p: Progress) -> None:
        value = round(p.fraction * SCALE)
        if value < self.bar.value():
            return  # a part that reports on its own scale: the bar never goes back
        self.bar.setValue(value)
        elapsed = time.perf_counter() - self.started
        self.bar.setFormat(f"%p%  {time_left(elapsed, p.fraction)}")
        if self.activity:
            self.activity[0].update(value - self.activity[0].n)

    def close(self) -> None:
        self.finished = True
        for one in self.activity:
            one.close()


def time_left(elapsed: float, fraction: float) -> str:
    """``"about 2 min left"``: the time left at the pace so far, or ``""`` before 1 %."""
    if fraction < 0.01 or fraction >= 1:
        return ""
    left = elapsed * (1 - fraction) / fraction
    if left < 60:
        return f"about {max(1, round(left))} s left"
    if left < 3600:
        return f"about {round(left / 60)} min left"
    return f"about {left / 3600:.1f} h left"


class _Refused:
    """What the worker returns when the request was refused."""

    def __init__(self, error: Exception) -> None:
        self.error = error


class _Cancelled:
    """What the worker returns when a loop inside it stopped at a cancel point."""

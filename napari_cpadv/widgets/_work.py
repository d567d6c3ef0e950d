"""The one bridge from a core generator (``progress.Work``) to a napari thread worker."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from qtpy.QtWidgets import QProgressBar, QPushButton

from napari_cpadv.progress import Progress, Work


def start(
    make_work: Callable[[], Work[Any]],
    *,
    bar: QProgressBar,
    cancel: QPushButton,
    on_done: Callable[[Any], None],
    on_error: Callable[[Exception], None],
    on_finish: Callable[[], None] = lambda: None,
) -> Any:
    """Run ``make_work()`` off the GUI thread; the bar follows it, ``cancel`` stops it.

    Cancelling stops the generator at its next yield; nothing is delivered to ``on_done``.
    A refusal of the request (``CpadvError``, ``ValueError``, ``OSError``: bad input, not a
    bug) goes to ``on_error`` alone; anything else also reaches napari's error handler.
    Returns the started worker.
    """
    from napari.qt.threading import thread_worker

    from napari_cpadv.errors import CpadvError

    @thread_worker
    def run() -> Any:
        try:
            return (yield from make_work())
        except (CpadvError, ValueError, OSError) as exc:
            return _Refused(exc)

    def done(value: Any) -> None:
        if isinstance(value, _Refused):
            on_error(value.error)
        else:
            on_done(value)

    worker = run()

    def show(p: Progress) -> None:
        bar.setMaximum(max(p.total, 1))
        bar.setValue(p.step)

    worker.yielded.connect(show)
    worker.returned.connect(done)
    worker.errored.connect(on_error)
    worker.finished.connect(on_finish)
    worker.finished.connect(lambda: cancel.setEnabled(False))
    cancel.clicked.connect(worker.quit)
    cancel.setEnabled(True)
    bar.setValue(0)
    worker.start()
    return worker


class _Refused:
    """What the worker returns when the request was refused."""

    def __init__(self, error: Exception) -> None:
        self.error = error

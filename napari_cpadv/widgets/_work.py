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
    Returns the started worker.
    """
    from napari.qt.threading import thread_worker

    @thread_worker
    def run() -> Any:
        return (yield from make_work())

    worker = run()

    def show(p: Progress) -> None:
        bar.setMaximum(max(p.total, 1))
        bar.setValue(p.step)

    worker.yielded.connect(show)
    worker.returned.connect(on_done)
    worker.errored.connect(on_error)
    worker.finished.connect(on_finish)
    worker.finished.connect(lambda: cancel.setEnabled(False))
    cancel.clicked.connect(worker.quit)
    cancel.setEnabled(True)
    bar.setValue(0)
    worker.start()
    return worker

"""TIFF checks shared by the slide opener, the mask reader and the direct tile path:
tifffile's log messages collected instead of printed, and why a damaged TIFF is damaged."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path

TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
"""The first four bytes of a TIFF or BigTIFF, either byte order."""


@contextlib.contextmanager
def tifffile_messages() -> Iterator[list[str]]:
    """Collect what tifffile logs (``invalid offset to first page``, ...) instead of letting
    it reach the console; the caller turns it into its own error."""
    logger = logging.getLogger("tifffile")
    messages: list[str] = []

    class _Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            messages.append(record.getMessage())

    handler, propagate = _Collect(), logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield messages
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate


def tiff_damage(p: Path) -> str | None:
    """Why a file that starts as a TIFF cannot be read as one, or ``None`` (not a TIFF, or
    a TIFF tifffile reads)."""
    import tifffile

    with p.open("rb") as f:
        if f.read(4) not in TIFF_MAGIC:
            return None
    failure = None
    with tifffile_messages() as messages:
        try:
            with tifffile.TiffFile(p) as tf:
                tf.pages.first  # noqa: B018 (reading the first page is the check)
        except Exception as exc:  # any parse failure is the damage to report
            failure = f"{type(exc).__name__}: {exc}"
    if messages:  # tifffile's own words ("invalid offset to first page 1000000")
        return "; ".join(m.split("> ", 1)[-1] for m in messages)
    return failure

"""The project's exceptions: each message names the file and what is wrong with it."""

from __future__ import annotations

import os


class CpadvError(Exception):
    """Bad input or a failed read; the message names the file and the reason.

    Parameters
    ----------
    path
        The file (or folder) the problem is about, or ``None`` when there is none.
    reason
        What is wrong, in words a user can act on.
    """

    def __init__(self, path: str | os.PathLike[str] | None, reason: str) -> None:
        self.path = None if path is None else os.fspath(path)
        self.reason = reason
        super().__init__(reason if self.path is None else f"{self.path}: {reason}")


class SlideError(CpadvError):
    """A slide that cannot be opened or read (unsupported, truncated, corrupt)."""


class FormatError(CpadvError):
    """A file whose content does not follow the format its name promises."""

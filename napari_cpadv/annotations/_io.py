"""Shared helpers of the annotation readers and writers."""

from __future__ import annotations

import math
import os
import warnings
from collections import Counter
from pathlib import Path

from napari_cpadv.errors import FormatError


def normalise_colour(
    value: object, path: str | os.PathLike[str] | None = None, where: str = ""
) -> str:
    """``#RRGGBB`` from ``#rgb``/``#rrggbb``/``#aarrggbb`` strings, ``[r, g, b]`` lists of
    integers 0-255, or packed (A)RGB integers (QuPath's ``colorRGB``, negative when opaque).

    Raises
    ------
    FormatError
        For anything else (a string that is no colour, NaN, 1e400, 300, a component that is
        not a number), naming ``where`` in the file.
    """
    at = f"{where} has colour" if where else "colour"
    if isinstance(value, str):
        v = value.strip().lstrip("#")
        if len(v) == 3:
            v = "".join(ch * 2 for ch in v)
        if len(v) == 8:  # AARRGGBB
            v = v[2:]
        if len(v) != 6 or any(ch not in "0123456789abcdefABCDEF" for ch in v):
            raise FormatError(path, f"{at} {value!r}, not #RRGGBB")
        return "#" + v.upper()
    if isinstance(value, (list, tuple)) and len(value) in (3, 4):
        parts = []
        for c in value[:3]:
            if isinstance(c, bool) or not isinstance(c, (int, float)):
                raise FormatError(path, f"{at} {value!r}: {c!r} is not a number")
            if not (math.isfinite(c) and c == int(c) and 0 <= c <= 255):
                raise FormatError(path, f"{at} {value!r}: {c!r} is not an integer 0-255")
            parts.append(int(c))
        r, g, b = parts
        return f"#{r:02X}{g:02X}{b:02X}"
    if isinstance(value, int) and not isinstance(value, bool):
        if not -(2**31) <= value < 2**32:
            raise FormatError(path, f"{at} {value!r}, not a packed RGB integer")
        return f"#{(value >> 16) & 255:02X}{(value >> 8) & 255:02X}{value & 255:02X}"
    raise FormatError(path, f"{at} {value!r}, neither #RRGGBB, [r, g, b] nor an integer")


def warn_skipped(path: Path, skipped: Counter[str], objects: str) -> None:
    """One warning that counts what a reader skipped, by reason; none when nothing was."""
    if skipped:
        what = ", ".join(f"{n} x {k}" for k, n in sorted(skipped.items()))
        warnings.warn(
            f"{path}: skipped {sum(skipped.values())} {objects}: {what}",
            UserWarning,
            stacklevel=3,
        )


def rgb(colour: str) -> list[int]:
    v = int(colour.lstrip("#"), 16)
    return [(v >> 16) & 255, (v >> 8) & 255, v & 255]


# Re-exported for code loaded before ``write_atomic`` moved to ``napari_cpadv.files``.
from napari_cpadv.files import write_atomic as write_atomic  # noqa: E402

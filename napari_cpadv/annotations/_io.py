"""Shared helpers of the annotation readers and writers."""

from __future__ import annotations

import os
from pathlib import Path

from napari_cpadv.errors import FormatError


def normalise_colour(value: object, path: str | os.PathLike[str] | None = None) -> str:
    """``#RRGGBB`` from ``#rgb``/``#rrggbb`` strings, ``[r, g, b]`` lists or packed ints."""
    if isinstance(value, str):
        v = value.strip().lstrip("#")
        if len(v) == 3:
            v = "".join(ch * 2 for ch in v)
        if len(v) == 8:  # AARRGGBB
            v = v[2:]
        try:
            int(v, 16)
        except ValueError:
            raise FormatError(path, f"colour {value!r} is not #RRGGBB") from None
        if len(v) != 6:
            raise FormatError(path, f"colour {value!r} is not #RRGGBB")
        return "#" + v.upper()
    if isinstance(value, (list, tuple)) and len(value) >= 3:
        r, g, b = (int(c) for c in value[:3])
        return f"#{r & 255:02X}{g & 255:02X}{b & 255:02X}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"#{(value >> 16) & 255:02X}{(value >> 8) & 255:02X}{value & 255:02X}"
    raise FormatError(path, f"colour {value!r} is neither #RRGGBB, [r, g, b] nor an integer")


def rgb(colour: str) -> list[int]:
    v = int(colour.lstrip("#"), 16)
    return [(v >> 16) & 255, (v >> 8) & 255, v & 255]


def write_atomic(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write to a temporary name beside ``path`` and move it into place."""
    out = Path(path)
    tmp = out.with_name(f".{out.name}.part")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return out

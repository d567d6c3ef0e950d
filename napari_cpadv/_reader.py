"""npe2 reader for whole-slide images: dispatch only, the work is in :mod:`napari_cpadv.slide`."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

SLIDE_SUFFIXES = (
    ".svs",
    ".tif",
    ".tiff",
    ".ndpi",
    ".mrxs",
    ".scn",
    ".vms",
    ".vmu",
    ".bif",
    ".svslide",
)

LayerData = tuple[Any, dict[str, Any], str]
_TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")


def napari_get_reader(path: str | list[str]) -> Callable[[str | list[str]], list[LayerData]] | None:
    """Return :func:`read_slide` when OpenSlide recognises ``path``, else ``None``. Never raises."""
    if isinstance(path, list):
        if len(path) != 1:
            return None
        path = path[0]
    try:
        p = Path(path)
        if p.suffix.lower() not in SLIDE_SUFFIXES or not p.is_file():
            return None
        import openslide

        if openslide.OpenSlide.detect_format(p) is None and not _damaged_slide(p):
            return None
    except Exception:  # the contract: a reader that cannot tell says None and lets others try
        return None
    return read_slide


def _damaged_slide(p: Path) -> bool:
    """A file OpenSlide cannot identify that is still meant to be a slide.

    Vendor extensions only OpenSlide reads count, and so does a TIFF whose first page is
    tiled or unreadable (a truncated slide); a plain stripped TIFF is left to other readers.
    """
    if p.suffix.lower() not in (".tif", ".tiff"):
        return True
    with p.open("rb") as f:
        if f.read(4) not in _TIFF_MAGIC:
            return False
    import tifffile

    try:
        with tifffile.TiffFile(p) as tf:
            return bool(tf.pages.first.is_tiled)
    except Exception:  # a damaged TIFF: ours to report, with the reason
        return True


def read_slide(path: str | list[str]) -> list[LayerData]:
    """Open a slide as one multiscale RGB image layer in micrometres.

    Raises
    ------
    napari_cpadv.errors.SlideError
        When the file looks like a slide but cannot be read (truncated, corrupt tiles).
    """
    from napari_cpadv.slide import open_slide

    p = Path(path[0] if isinstance(path, list) else path)
    slide = open_slide(p)
    slide.validate()
    return [slide_layer_data(slide)]


def slide_layer_data(slide: Any) -> LayerData:
    """Layer data of an open :class:`~napari_cpadv.slide.Slide`: µm, or pixels and a warning."""
    scale = slide.level_scale(0)
    if scale is None:
        warnings.warn(
            f"{slide.path}: the slide records no microns per pixel; showing it in pixels",
            UserWarning,
            stacklevel=2,
        )
        scale, units = (1.0, 1.0), ("pixel", "pixel")
    else:
        units = ("um", "um")
    kwargs = {
        "name": slide.path.name,
        "multiscale": True,
        "rgb": True,
        "scale": scale,
        "units": units,
        "contrast_limits": (0, 255),
        "metadata": {
            "cpadv_slide_path": str(slide.path),
            "mpp": slide.mpp,
            "downsamples": slide.downsamples,
            "properties": dict(slide.properties),
        },
    }
    return (list(slide.levels), kwargs, "image")

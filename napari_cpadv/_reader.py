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
    ".dcm",
)

LayerData = tuple[Any, dict[str, Any], str]


def _one_file(path: str | list[str]) -> Path | None:
    """The single file napari offers, or ``None`` for several paths or a folder."""
    if isinstance(path, list):
        if len(path) != 1:
            return None
        path = path[0]
    p = Path(path)
    return p if p.is_file() else None


def napari_get_reader(path: str | list[str]) -> Callable[[str | list[str]], list[LayerData]] | None:
    """Return :func:`read_slide` when OpenSlide recognises ``path``, else ``None``. Never raises."""
    try:
        p = _one_file(path)
        if p is None or p.suffix.lower() not in SLIDE_SUFFIXES:
            return None
        import openslide

        if openslide.OpenSlide.detect_format(p) is None and not _damaged_slide(p):
            return None
    except Exception:  # the contract: a reader that cannot tell says None and lets others try
        return None
    return read_slide


def napari_get_dicom_folder_reader(
    path: str | list[str],
) -> Callable[[str | list[str]], list[LayerData]] | None:
    """:func:`read_slide` for a folder holding a DICOM whole-slide image; never raises."""
    try:
        p = Path(path[0] if isinstance(path, list) and len(path) == 1 else path)  # type: ignore[arg-type]
        return read_slide if p.is_dir() and dicom_in_folder(p) is not None else None
    except Exception:  # the contract: a reader that cannot tell says None and lets others try
        return None


def dicom_in_folder(folder: Path) -> Path | None:
    """A ``.dcm`` file of the folder that OpenSlide opens as a DICOM slide (OpenSlide finds the
    series' other files beside it), or ``None``."""
    import openslide

    for f in sorted(folder.glob("*.dcm")):
        if f.is_file() and openslide.OpenSlide.detect_format(f) == "dicom":
            return f
    return None


def _damaged_slide(p: Path) -> bool:
    """A file OpenSlide cannot identify that is still meant to be a slide.

    Vendor extensions only OpenSlide reads count, and so does a TIFF whose first page is
    tiled or unreadable (a truncated slide); a plain stripped TIFF is left to other readers.
    """
    if p.suffix.lower() == ".dcm":
        return False  # DICOM of another modality (CT, MR): not ours
    if p.suffix.lower() not in (".tif", ".tiff"):
        return True
    import tifffile

    from napari_cpadv.slide.tiff import TIFF_MAGIC, tiff_damage, tifffile_messages

    with p.open("rb") as f:
        if f.read(4) not in TIFF_MAGIC:
            return False

    if tiff_damage(p) is not None:
        return True  # a damaged TIFF: ours to report, with the reason
    with tifffile_messages(), tifffile.TiffFile(p) as tf:
        return bool(tf.pages.first.is_tiled)


def read_slide(path: str | list[str]) -> list[LayerData]:
    """Open a slide as one multiscale RGB image layer in micrometres.

    A file beside it with the same stem and ``.xml`` (ASAP) or ``.geojson`` (QuPath) opens
    too, as a "ground truth" Shapes layer on top. A mask written by ``cpadv mask`` opens as
    a multiscale Labels layer instead.

    Raises
    ------
    napari_cpadv.errors.SlideError
        When the file looks like a slide but cannot be read (truncated, corrupt tiles).
    """
    from napari_cpadv.slide import open_slide

    p = Path(path[0] if isinstance(path, list) else path)
    if p.is_dir():
        dcm = dicom_in_folder(p)
        if dcm is None:
            from napari_cpadv.errors import SlideError

            raise SlideError(p, "the folder holds no DICOM whole-slide image")
        p = dcm
    if _is_cpadv_mask(p):
        return [_mask_layer_data(p)]
    slide = open_slide(p)
    slide.validate()
    layers = [slide_layer_data(slide)]
    if slide.mpp is not None:
        _scale_bar_in_um()
    from napari_cpadv.widgets._outlines import keep_outlines_thin

    keep_outlines_thin()
    for suffix in (".xml", ".geojson"):
        truth = p.with_suffix(suffix)
        if truth.is_file():
            from napari_cpadv._annotation_layers import annotation_layers
            from napari_cpadv.annotations import read_annotations

            layers.extend(
                annotation_layers(
                    read_annotations(truth), name="ground truth", mpp=slide.mpp, source=truth
                )
            )
            break
    return layers


def napari_get_annotation_reader(
    path: str | list[str],
) -> Callable[[str | list[str]], list[LayerData]] | None:
    """:func:`read_annotation_file` for ASAP ``.xml`` and QuPath ``.geojson``; never raises."""
    try:
        p = _one_file(path)
        if p is None:
            return None
        if p.suffix.lower() == ".xml":
            with p.open("rb") as f:
                if b"ASAP_Annotations" not in f.read(4096):
                    return None
        elif p.suffix.lower() != ".geojson":
            return None
    except OSError:
        return None
    return read_annotation_file


def read_annotation_file(path: str | list[str]) -> list[LayerData]:
    """Annotations as a Shapes layer (areas, lines) and a Points layer (points), in µm on the
    slide open in the viewer, else in pixels."""
    from napari_cpadv._annotation_layers import annotation_layers
    from napari_cpadv.annotations import read_annotations

    p = Path(path[0] if isinstance(path, list) else path)
    anns = read_annotations(p)
    from napari_cpadv.widgets._outlines import keep_outlines_thin

    keep_outlines_thin()
    return annotation_layers(anns, name=p.name, mpp=_open_slide_mpp(), source=p)


def napari_get_heatmap_reader(
    path: str | list[str],
) -> Callable[[str | list[str]], list[LayerData]] | None:
    """The reader for a ``cpadv heatmap`` or a delta-slide zarr folder; None otherwise."""
    from napari_cpadv.inference.zarr_io import is_heatmap
    from napari_cpadv.slide.delta import is_delta

    if isinstance(path, list):
        if len(path) != 1:
            return None
        path = path[0]
    if is_delta(path):
        return read_delta_slide
    return read_heatmap_file if is_heatmap(path) else None


def read_delta_slide(path: str | list[str]) -> list[LayerData]:
    """An adversarial (delta) slide as a multiscale layer, exactly like its original."""
    from napari_cpadv.slide.delta import open_delta

    return [slide_layer_data(open_delta(path[0] if isinstance(path, list) else path))]


def read_heatmap_file(path: str | list[str]) -> list[LayerData]:
    from napari_cpadv._heatmap_layers import read_heatmap_layers

    return read_heatmap_layers(str(path[0] if isinstance(path, list) else path))


def napari_get_session_reader(
    path: str | list[str],
) -> Callable[[str | list[str]], list[LayerData]] | None:
    """The reader of a workbench session file (``*.cpadv.json``); None otherwise."""
    p = _one_file(path)
    if p is None or not p.name.endswith(".cpadv.json"):
        return None
    return read_session_file


def read_session_file(path: str | list[str]) -> list[LayerData]:
    """Every layer a session file records, in its order, named as it was."""
    import warnings as _warnings

    import tifffile

    from napari_cpadv._annotation_layers import annotation_layers
    from napari_cpadv._heatmap_layers import perturbation_layer_data, read_heatmap_layers
    from napari_cpadv.annotations import read_annotations
    from napari_cpadv.slide import open_slide
    from napari_cpadv.slide.delta import open_delta
    from napari_cpadv.workbench.session import read_session

    session = read_session(path[0] if isinstance(path, list) else path)
    for w in session.warnings:
        _warnings.warn(f"{session.path}: {w}", UserWarning, stacklevel=2)
    slide = open_slide(session.slide)
    layers: list[LayerData] = []
    for rec in session.layers:
        if rec.kind == "slide":
            data = slide_layer_data(open_slide(rec.path))
        elif rec.kind == "adversarial":
            data = slide_layer_data(open_delta(rec.path))
            data[1]["metadata"]["cpadv_adversarial"] = True
            metrics = Path(str(rec.provenance.get("run", ""))) / "metrics.json"
            if rec.provenance.get("run") and metrics.is_file():  # the Attack dock shows it
                data[1]["metadata"]["cpadv_metrics"] = _json(metrics).get("metrics", [])
        elif rec.kind == "heatmap":
            data = read_heatmap_layers(rec.path)[0]
        elif rec.kind == "annotations":
            from napari_cpadv.widgets._outlines import keep_outlines_thin

            keep_outlines_thin()
            data = annotation_layers(
                read_annotations(rec.path), name=rec.name, mpp=slide.mpp, source=Path(rec.path)
            )[0]
        else:  # perturbation
            pv = rec.provenance
            data = perturbation_layer_data(
                tifffile.imread(rec.path),
                level_origin=tuple(pv["level_box"][:2]),
                downsample=float(slide.downsamples[pv["level"]]),
                mpp=slide.mpp,
                metadata=pv,
            )
        data[1]["name"] = rec.name
        data[1].setdefault("metadata", {})["cpadv_provenance"] = {
            "kind": rec.kind,
            "path": rec.path,
            **rec.provenance,
        }
        layers.append(data)
    return layers


def _json(path: Path) -> dict[str, Any]:
    import json

    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}  # a run's metrics are a convenience on reopening, not the session itself
    return value if isinstance(value, dict) else {}


def scale_bar(viewer: Any) -> Any:
    """The viewer's scale-bar overlay (``viewer.canvas.overlays`` since napari 0.9)."""
    canvas = getattr(viewer, "canvas", None)
    overlays = getattr(canvas, "overlays", None)
    bar = getattr(overlays, "scale_bar", None) if overlays is not None else None
    return bar if bar is not None else viewer.scale_bar


def _scale_bar_in_um() -> None:
    """Show the current viewer's scale bar, as pathologists read slides.

    Its unit comes from the layers' ``units`` (µm, set by :func:`slide_layer_data`):
    napari 0.9 ignores ``ScaleBar.unit`` and warns when it is set.
    """
    import napari

    viewer = napari.current_viewer()
    if viewer is not None:
        scale_bar(viewer).visible = True


def _open_slide_mpp() -> tuple[float, float] | None:
    """µm per level-0 pixel of the slide open in the current viewer, if any."""
    import napari

    viewer = napari.current_viewer()
    if viewer is None:
        return None
    for layer in viewer.layers:
        mpp = layer.metadata.get("mpp") if "cpadv_slide_path" in layer.metadata else None
        if mpp:
            return (float(mpp[0]), float(mpp[1]))
    return None


def _is_cpadv_mask(p: Path) -> bool:
    import tifffile

    from napari_cpadv.slide.tiff import tifffile_messages

    try:
        with tifffile_messages(), tifffile.TiffFile(p) as tf:
            page = tf.pages.first
            return page.samplesperpixel == 1 and page.software == "napari-cpadv"
    except Exception:  # not a TIFF tifffile reads: not one of our masks
        return False


def _mask_layer_data(p: Path) -> LayerData:
    """A ``cpadv mask`` TIFF as a multiscale Labels layer, scaled by its resolution tags."""
    import tifffile

    from napari_cpadv.errors import FormatError

    try:
        with tifffile.TiffFile(p) as tf:
            levels = [page.asarray() for page in tf.pages]
            page = tf.pages.first
            unit = page.tags.get("ResolutionUnit")
            xres, yres = page.tags.get("XResolution"), page.tags.get("YResolution")
            scale: tuple[float, float] = (1.0, 1.0)
            units = ("pixel", "pixel")
            if unit is not None and unit.value == 3 and xres is not None and yres is not None:
                scale = (1e4 * yres.value[1] / yres.value[0], 1e4 * xres.value[1] / xres.value[0])
                units = ("um", "um")
    except Exception as exc:
        raise FormatError(p, f"cannot read the mask ({exc})") from exc
    kwargs = {"name": p.name, "multiscale": True, "scale": scale, "units": units, "opacity": 0.5}
    return (levels, kwargs, "labels")


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
    return (list(slide.arrays), kwargs, "image")

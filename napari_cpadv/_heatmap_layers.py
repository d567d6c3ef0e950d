"""Heatmaps as napari image layers placed cell-for-cell on the slide (DESIGN.md, coordinates)."""

from __future__ import annotations

from typing import Any

import numpy as np

LayerData = tuple[Any, dict[str, Any], str]


def heatmap_layer_data(
    values: Any,
    *,
    cell_level0: float,
    origin: tuple[int, int] = (0, 0),
    mpp: tuple[float, float] | None,
    name: str,
    metadata: dict[str, Any] | None = None,
) -> LayerData:
    """A 0-1 image layer over the slide, transparent at 0 (``probability_colormap``).

    ``values`` is one array or a pyramid (list, finest first) of probabilities on a grid of
    ``cell_level0`` level-0 pixels per cell, starting at cell ``origin`` ``(row, col)``.
    A cell's centre is ``(origin + index) * s + (s - 1) / 2`` level-0 pixels, which
    ``scale`` and ``translate`` express in µm (or in pixels when ``mpp`` is None).
    """
    s = float(cell_level0)
    um = (1.0, 1.0) if mpp is None else (mpp[1], mpp[0])  # (row, col) = (y, x)
    scale = (s * um[0], s * um[1])
    translate = tuple((origin[i] * s + (s - 1) / 2) * um[i] for i in range(2))
    multiscale = isinstance(values, list) and len(values) > 1
    kwargs = {
        "name": name,
        "colormap": probability_colormap(),
        "contrast_limits": (0.0, 1.0),
        "opacity": 0.8,
        "blending": "translucent",
        "scale": scale,
        "translate": translate,
        "units": ("um", "um") if mpp else ("pixel", "pixel"),
        "multiscale": multiscale,
        "metadata": {
            "cpadv_heatmap": True,
            "cell_level0": s,
            "origin": list(origin),
            **(metadata or {}),
        },
    }
    data = values if multiscale else (values[0] if isinstance(values, list) else values)
    return (data, kwargs, "image")


def probability_colormap() -> dict[str, Any]:
    """Inferno whose opacity rises from 0 at probability 0 to full at 0.5: where a detector
    sees no tumour the slide shows through untouched, instead of under a black veil.

    A napari colormap as plain data (``colors``, ``name``, ``interpolation``), which napari
    builds into its ``Colormap``; inferno's colours come from matplotlib, so this module
    imports no napari."""
    from matplotlib import colormaps

    x = np.linspace(0, 1, 256)
    colors = np.asarray(colormaps["inferno"](x), dtype=np.float32)
    colors[:, 3] = np.clip(x / 0.5, 0, 1)
    return {"colors": colors, "name": "cpadv tumour probability", "interpolation": "linear"}


def read_heatmap_layers(path: str) -> list[LayerData]:
    """A ``cpadv heatmap`` zarr pyramid as a layer."""
    from napari_cpadv.inference.zarr_io import read_heatmap

    levels, attrs = read_heatmap(path)
    mpp = tuple(attrs["mpp"]) if attrs.get("mpp") else None
    return [
        heatmap_layer_data(
            [np.asarray(lv) if lv.size < 2**22 else lv for lv in levels],
            cell_level0=attrs["cell_level0"],
            origin=tuple(attrs.get("origin", (0, 0))),
            mpp=mpp,
            name=f"{attrs.get('detector', 'heatmap')} heatmap",
            metadata={"cpadv_source": str(path), **attrs},
        )
    ]


def level_layer_kwargs(
    *, level_origin: tuple[int, int], downsample: float, mpp: tuple[float, float] | None
) -> dict[str, Any]:
    """``scale``/``translate``/``units`` of an image on one slide level's pixel grid whose
    first pixel is level pixel ``level_origin`` (DESIGN.md's pixel-centre convention)."""
    um = (1.0, 1.0) if mpp is None else (mpp[1], mpp[0])
    s = float(downsample)
    return {
        "scale": (s * um[0], s * um[1]),
        "translate": tuple((level_origin[i] * s + (s - 1) / 2) * um[i] for i in range(2)),
        "units": ("um", "um") if mpp else ("pixel", "pixel"),
    }


def perturbation_layer_data(
    delta: np.ndarray,
    *,
    level_origin: tuple[int, int],
    downsample: float,
    mpp: tuple[float, float] | None,
    name: str = "perturbation",
    metadata: dict[str, Any] | None = None,
) -> LayerData:
    """δ ``(rows, cols, 3)`` in grey levels, as the channel mean on a diverging colormap
    centred on 0; the contrast limits ±max|δ| amplify it to the full colour range, and
    the amplification is in the name."""
    from napari_cpadv.experiments.measure import amplification

    gain = amplification(delta)
    values = np.asarray(delta, np.float32)
    if values.ndim == 3:
        values = values.mean(axis=2)
    peak = 127.5 / gain
    kwargs = {
        "name": f"{name} (x{gain:.0f})",
        "colormap": "PiYG",
        "contrast_limits": (-peak, peak),
        **level_layer_kwargs(level_origin=level_origin, downsample=downsample, mpp=mpp),
        "metadata": {"cpadv_perturbation": True, "amplification": gain, **(metadata or {})},
    }
    return (values, kwargs, "image")


def saliency_layer_data(
    values: np.ndarray,
    *,
    level_origin: tuple[int, int],
    downsample: float,
    mpp: tuple[float, float] | None,
    name: str,
    limit: float,
) -> LayerData:
    """A gradient-saliency map on a level's pixel grid, magma, 0 to ``limit`` (one limit
    for the maps before and after, so they compare)."""
    kwargs = {
        "name": name,
        "colormap": "magma",
        "contrast_limits": (0.0, float(limit) or 1.0),
        "blending": "additive",
        **level_layer_kwargs(level_origin=level_origin, downsample=downsample, mpp=mpp),
        "metadata": {"cpadv_saliency": True},
    }
    return (np.asarray(values, np.float32), kwargs, "image")

"""The detector protocol and the registry of the seeds' three detectors.

Every detector is a torch module taking float32 ``(N, 3, H, W)`` RGB images in [0, 1] and
returning logits: a cell grid ``(N, H/4, W/4)`` (``output == "cells"``) or class logits
``(N, 2)`` (``output == "classes"``, one per ``cell`` x ``cell`` patch). Any
normalisation lives inside the module, so attacks work in image space.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol

if TYPE_CHECKING:
    import torch
    from torch import nn

DetectorName = Literal["dae", "sparse", "resnet18"]
NAMES: tuple[DetectorName, ...] = ("dae", "sparse", "resnet18")


class Detector(Protocol):
    """What inference, evaluation and attacks rely on.

    Attributes
    ----------
    name
        The registry key.
    output
        ``"cells"`` or ``"classes"``.
    cell
        Input pixels per output value, on each side (4 for the cell heads, the patch side
        for a classifier).
    multiple
        Tile sides (and tile offsets, for seamless stitching) must be multiples of it.
    margin
        Context in input pixels to read around a tile so that stitched tiles show no seams.
    """

    name: ClassVar[str]
    output: ClassVar[str]
    cell: int
    multiple: int
    margin: int

    def __call__(self, x: torch.Tensor) -> torch.Tensor: ...

    def tumour_logits(self, x: torch.Tensor) -> torch.Tensor:
        """The tumour logit per cell ``(N, H/4, W/4)`` or per patch ``(N,)``."""
        ...

    def config(self) -> dict[str, Any]:
        """Hyper-parameters that rebuild the same architecture: ``make(name, **config)``."""
        ...


def registry() -> dict[str, type[nn.Module]]:
    """Name -> detector class (imports torch)."""
    from napari_cpadv.models.dae import DaeDetector
    from napari_cpadv.models.lca import SparseDetector
    from napari_cpadv.models.resnet import ResNetDetector

    return {"dae": DaeDetector, "sparse": SparseDetector, "resnet18": ResNetDetector}


def make(name: str, **hyper: Any) -> Any:
    """A fresh detector ``name`` with ``hyper`` over its defaults (untrained weights)."""
    classes = registry()
    if name not in classes:
        raise ValueError(f"unknown detector {name!r}; choose one of {', '.join(classes)}")
    return classes[name](**hyper)

"""The detector protocol and the registry of the seeds' three detectors.

Every detector is a torch module taking float32 ``(N, 3, H, W)`` RGB images in [0, 1] and
returning logits: a cell grid ``(N, H/4, W/4)`` (``output == "cells"``) or class logits
``(N, 2)`` (``output == "classes"``, one per ``cell`` x ``cell`` patch). Any
normalisation lives inside the module, so attacks work in image space.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol, runtime_checkable

if TYPE_CHECKING:
    import torch
    from torch import nn

DetectorName = Literal["dae", "sparse", "resnet18"]
NAMES: tuple[DetectorName, ...] = ("dae", "sparse", "resnet18")


@runtime_checkable
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
    gradient_free
        No gradient flows from the output to the image (the sparse coder's iterative
        encoding): gradient attacks refuse it.
    latent
        It reads a code it infers from the image, and offers ``encode(x)`` (a code with
        ``codes`` and the per-image ``std``), ``head(codes)`` and ``synthesise(codes)``:
        the latent attack and saliency work through them.
    natural_attack
        The registry name of the seeds' own white-box attack on it (``cpadv transfer``).
    """

    name: ClassVar[str]
    output: ClassVar[str]
    gradient_free: ClassVar[bool]
    latent: ClassVar[bool]
    natural_attack: ClassVar[str]
    cell: int
    multiple: int
    margin: int

    def __call__(self, x: torch.Tensor) -> torch.Tensor: ...

    def to(self, *args: Any, **kwargs: Any) -> Any:
        """As ``nn.Module.to``."""
        ...

    def eval(self) -> Any:
        """As ``nn.Module.eval``."""
        ...

    def parameters(self) -> Any:
        """As ``nn.Module.parameters``."""
        ...

    def state_dict(self) -> Any:
        """As ``nn.Module.state_dict``."""
        ...

    def tumour_logits(self, x: torch.Tensor) -> torch.Tensor:
        """The tumour logit per cell ``(N, H/4, W/4)`` or per patch ``(N,)``."""
        ...

    def config(self) -> dict[str, Any]:
        """Hyper-parameters that rebuild the same architecture: ``make(name, **config)``."""
        ...


@runtime_checkable
class LatentDetector(Detector, Protocol):
    """A detector that reads a code it infers (``latent`` true): what the latent attack and
    saliency use."""

    def encode(self, x: torch.Tensor) -> Any:
        """The code of ``x``: ``codes`` ``(N, atoms, h, w)`` and the per-image ``std``."""
        ...

    def head(self, codes: torch.Tensor) -> torch.Tensor:
        """Cell logits from a code."""
        ...

    def synthesise(self, codes: torch.Tensor) -> torch.Tensor:
        """The standardised image a code synthesises."""
        ...

    def unrolled_codes(self, x: torch.Tensor, iterations: int) -> torch.Tensor:
        """The code of ``x`` after ``iterations`` of the encoder's own loop, differentiable
        in ``x`` (the adaptive attacks)."""
        ...

    def bpda_codes(self, x: torch.Tensor, iterations: int) -> torch.Tensor:
        """The encoder's code of ``x`` with the gradient of ``iterations`` unrolled ones."""
        ...


def registry() -> dict[str, type[nn.Module]]:
    """Name -> detector class (imports torch)."""
    from napari_cpadv.models.dae import DaeDetector
    from napari_cpadv.models.resnet import ResNetDetector
    from napari_cpadv.models.sparse import SparseDetector

    return {"dae": DaeDetector, "sparse": SparseDetector, "resnet18": ResNetDetector}


def with_output(output: str) -> tuple[str, ...]:
    """The names of the detectors whose ``output`` is ``"cells"`` (heatmaps) or ``"classes"``."""
    return tuple(name for name, cls in registry().items() if getattr(cls, "output", None) == output)


def make(name: str, **hyper: Any) -> Any:
    """A fresh detector ``name`` with ``hyper`` over its defaults (untrained weights)."""
    classes = registry()
    if name not in classes:
        raise ValueError(f"unknown detector {name!r}; choose one of {', '.join(classes)}")
    return classes[name](**hyper)

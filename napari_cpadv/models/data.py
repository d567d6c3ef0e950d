"""Tile sets as the training loops and the held-out scores read them: ``cpadv tiles``
folders (``index.csv``, ``tiles/``, ``masks/``) loaded into memory, seed 001's patch
labels, and a detector's predictions and held-out metrics on them."""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch

from napari_cpadv.device import to_tensor
from napari_cpadv.errors import FormatError
from napari_cpadv.models.detector import Detector
from napari_cpadv.progress import Work

POSITIVE_NUCLEI = 5  # seed 001: a patch with at least 5 tumour nuclei is positive


@dataclass(frozen=True)
class TileSet:
    """Tiles and their cell masks.

    ``images`` ``(N, S, S, 3)`` uint8, in memory (``load_tiles``) or read from the slides
    on demand (``annotations.stream.SlideTiles``, from ``stream_tiles``); ``masks``
    ``(N, S/4, S/4)`` bool; ``tumour_cells`` the fraction of tumour cells per tile;
    ``nuclei`` and ``tumour_nuclei`` counts (-1 when written without a truth file);
    ``names`` ``folder/tile`` for reports.
    """

    images: Any  # np.ndarray or annotations.stream.SlideTiles: both index like arrays
    masks: np.ndarray
    tumour_cells: np.ndarray
    nuclei: np.ndarray
    tumour_nuclei: np.ndarray
    names: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.images)

    def subset(self, keep: np.ndarray) -> TileSet:
        keep = np.asarray(keep)
        select = getattr(self.images, "select", None)  # streamed tiles stay unread
        return TileSet(
            self.images[keep] if select is None else select(keep),
            self.masks[keep],
            self.tumour_cells[keep],
            self.nuclei[keep],
            self.tumour_nuclei[keep],
            tuple(np.asarray(self.names, dtype=object)[keep]),
        )

    def joined(self, other: TileSet) -> TileSet:
        """These tiles followed by ``other``'s (both in memory, the same side)."""
        if self.images.shape[1:] != other.images.shape[1:]:
            raise ValueError(
                f"tiles of {self.images.shape[1:]} and {other.images.shape[1:]} cannot be joined"
            )
        return TileSet(
            np.concatenate([np.asarray(self.images), np.asarray(other.images)]),
            np.concatenate([self.masks, other.masks]),
            np.concatenate([self.tumour_cells, other.tumour_cells]),
            np.concatenate([self.nuclei, other.nuclei]),
            np.concatenate([self.tumour_nuclei, other.tumour_nuclei]),
            self.names + other.names,
        )

    def patch_labels(self) -> tuple[TileSet, np.ndarray]:
        """Seed 001's rule: positive with ≥ 5 tumour nuclei, negative with none, others out."""
        if (self.tumour_nuclei < 0).any():
            raise ValueError("these tiles carry no nucleus counts (write them with --truth)")
        pos = self.tumour_nuclei >= POSITIVE_NUCLEI
        keep = pos | (self.tumour_nuclei == 0)
        return self.subset(keep), pos[keep].astype(np.int64)


def load_tiles(folders: Sequence[str | os.PathLike[str]]) -> TileSet:
    """Read one or more ``cpadv tiles`` folders; every tile must have the same size."""
    from PIL import Image

    images, masks, frac, nuc, tnuc, names = [], [], [], [], [], []
    for folder in map(Path, folders):
        index = folder / "index.csv"
        try:
            with open(index, newline="") as f:
                rows = list(csv.DictReader(f))
        except OSError as exc:
            raise FormatError(
                index, f"cannot be read ({exc.strerror}); is this a `cpadv tiles` folder?"
            ) from exc
        for n, row in enumerate(rows, start=2):
            try:
                with Image.open(folder / row["tile"]) as im:
                    images.append(np.asarray(im.convert("RGB")))
                with Image.open(folder / row["mask"]) as im:
                    masks.append(np.asarray(im) > 127)
                frac.append(float(row["tumour_cells"]))
                nuc.append(int(row.get("nuclei") or -1))
                tnuc.append(int(row.get("tumour_nuclei") or -1))
            except (OSError, KeyError, ValueError) as exc:
                raise FormatError(index, f"line {n}: {exc}") from exc
            names.append(f"{folder.name}/{row['tile']}")
    if not images:
        raise FormatError(Path(folders[0]) if folders else None, "no tiles found")
    shapes = {im.shape for im in images}
    if len(shapes) != 1:
        raise FormatError(Path(folders[0]), f"tiles of several sizes: {sorted(shapes)}")
    return TileSet(
        np.stack(images),
        np.stack(masks),
        np.asarray(frac),
        np.asarray(nuc),
        np.asarray(tnuc),
        tuple(names),
    )


def stream_tiles(sources: Sequence[Any], *, level: int, size: int) -> Work[TileSet]:
    """Tiles of slides (``annotations.stream.SlideData``) indexed once, read on demand:
    ``cpadv tiles``'s tiles and labels without writing a file."""
    from napari_cpadv.annotations.stream import index_slides

    found = yield from index_slides(sources, level=level, size=size)
    return TileSet(**found)


def batch_images(
    images: Any, batches: Sequence[np.ndarray], *, workers: int = 0
) -> Iterator[np.ndarray]:
    """The pixels of each batch of ``batches`` in turn, ``(B, S, S, 3)`` uint8.

    In-memory images are sliced; streamed ones (``SlideTiles``) are read by a torch
    ``DataLoader`` with ``workers`` processes reading ahead (0: read in this process).
    """
    from napari_cpadv.annotations.stream import SlideTiles

    if not isinstance(images, SlideTiles) or workers == 0:
        for idx in batches:
            yield np.asarray(images[idx])
        return
    import multiprocessing

    from torch.utils.data import DataLoader

    # Not fork: a process forked while torch's and the slide cache's threads hold locks can
    # hang in its first read (seen here). A fork server (or spawn) starts workers clean;
    # each opens its own slides (SlideTiles drops its handles when pickled).
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
    loader: Any = DataLoader(
        cast(Any, images),  # a map-style dataset: len and integer indexing
        batch_sampler=[list(map(int, b)) for b in batches],
        num_workers=workers,
        collate_fn=_stack,
        multiprocessing_context=context,
        # its workers' seed from a generator of its own: the global torch generator (the
        # model's dropout) draws the same numbers with and without workers
        generator=torch.Generator().manual_seed(0),
    )
    yield from loader


def _stack(tiles: list[np.ndarray]) -> np.ndarray:
    """A batch from a worker (a module-level function: it is pickled to the workers)."""
    return np.stack(tiles)


@torch.no_grad()
def predict_tiles(
    detector: Detector, data: TileSet, *, device: torch.device | str = "cpu", batch: int = 8
) -> np.ndarray:
    """Tumour logits of every tile: cell grids ``(N, S/4, S/4)`` or one per patch ``(N,)``."""
    detector.to(device).eval()
    out = [
        detector.tumour_logits(to_tensor(data.images[i : i + batch], device)).cpu().numpy()
        for i in range(0, len(data), batch)
    ]
    return np.concatenate(out)


def holdout_metrics(
    detector: Detector, data: TileSet, *, device: torch.device | str = "cpu"
) -> dict[str, Any]:
    """Held-out scores: cell AUC-PR for the cell detectors, AUC-ROC for the classifier."""
    from napari_cpadv.metrics.scores import accuracy, aucpr, aucroc

    if detector.output == "classes":
        patches, labels = data.patch_labels()
        scores = predict_tiles(detector, patches, device=device)
        return {
            "aucroc": aucroc(labels, scores),
            "accuracy": accuracy(labels, scores),
            "n_patches": len(labels),
            "n_positive": int(labels.sum()),
        }
    score = aucpr(data.masks, predict_tiles(detector, data, device=device))
    return {k: v for k, v in score.to_json().items() if k != "curve"}


def tiles_level(folder: str | os.PathLike[str]) -> int | None:
    """The slide level a `cpadv tiles` folder was cut at (from its first index row)."""
    with open(Path(folder) / "index.csv", newline="") as f:
        row = next(csv.DictReader(f), None)
    return None if row is None else int(row["level"])

"""The slides seed 000 learns from and attacks: painted with known truth, or Camelyon16.

``synthetic_slides`` paints the training slides and one held-out slide; ``camelyon16``
takes a Camelyon16 folder as it ships (``training/tumor/tumor_NNN.tif``,
``training/normal/normal_NNN.tif``, ``lesion_annotations/tumor_NNN.xml``, ASAP XML) and
holds ``tumor_110`` out, as the paper did. Either way every slide's tissue tiles are cut
at one level with their cell masks (``annotations.dataset``, seed 000's hue rule), and the
attack tiles are the held-out slide's tiles with the most tumour cells.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from napari_cpadv.errors import FormatError
from napari_cpadv.progress import Progress, Work

HELD_OUT = "tumor_110"  # seed 000 §2.7
CAMELYON_LAYOUT = (
    "a Camelyon16 folder: training/tumor/tumor_NNN.tif with lesion_annotations/tumor_NNN.xml "
    f"(ASAP), training/normal/normal_NNN.tif, and {HELD_OUT} among the tumour slides (held out)"
)


def _tiles(slide_path: Path, xml: Path | None, out: Path, level: int, size: int) -> int:
    from napari_cpadv.annotations.dataset import write_tile_dataset
    from napari_cpadv.slide import open_slide

    slide = open_slide(slide_path)
    if level >= len(slide.levels):
        raise FormatError(slide_path, f"has {len(slide.levels)} levels; level {level} is needed")
    return int(write_tile_dataset(slide, xml, level=level, size=size, out=out)["tiles"])


def synthetic_slides(folder: Path, sizes: Any, seed: int) -> Work[dict[str, Any]]:
    """Paint ``sizes.train_slides`` training slides and one held-out slide, and their tiles."""
    from napari_cpadv.annotations import Annotation, write_annotations
    from napari_cpadv.slide.synthetic import make_slide

    names = [f"train{k}" for k in range(sizes.train_slides)] + ["holdout"]
    for k, name in enumerate(names):
        path = folder / f"{name}.tif"
        truth = make_slide(path, shape=(sizes.side, sizes.side), seed=seed + 100 + k)
        anns = [Annotation(p.exterior, p.holes, cls="Tumor") for p in truth.tumours]
        xml = write_annotations(anns, path.with_suffix(".xml"))
        _tiles(path, xml, folder / f"tiles_{name}", sizes.level, sizes.tile)
        yield Progress(k + 1, len(names), {"slide": name})
    return {
        "train": [f"tiles_{n}" for n in names[:-1]],
        "holdout": ["tiles_holdout"],
        "holdout_slide": "holdout.tif",
        "holdout_annotations": "holdout.xml",
        "level": sizes.level,
    }


def camelyon_slides(root: Path) -> tuple[list[tuple[Path, Path | None]], tuple[Path, Path]]:
    """``(slide, annotations or None)`` of every training slide and the held-out pair."""
    tumour = sorted((root / "training" / "tumor").glob("*.tif"))
    normal = sorted((root / "training" / "normal").glob("*.tif"))
    notes = root / "lesion_annotations"
    if not tumour or not normal:
        raise FormatError(
            root, f"holds no training/tumor or training/normal slides: expected {CAMELYON_LAYOUT}"
        )
    missing = [p.stem for p in tumour if not (notes / f"{p.stem}.xml").is_file()]
    if missing:
        raise FormatError(
            notes, f"has no annotations for {', '.join(missing[:5])}: expected {CAMELYON_LAYOUT}"
        )
    held = [p for p in tumour if p.stem == HELD_OUT]
    if not held:
        raise FormatError(
            root / "training" / "tumor", f"has no {HELD_OUT}.tif, the slide seed 000 held out"
        )
    train: list[tuple[Path, Path | None]] = [
        (p, notes / f"{p.stem}.xml") for p in tumour if p.stem != HELD_OUT
    ]
    train += [(p, None) for p in normal]
    return train, (held[0], notes / f"{HELD_OUT}.xml")


def camelyon16(root: Path, folder: Path, sizes: Any) -> Work[dict[str, Any]]:
    """Every Camelyon16 training slide's tiles, and the held-out slide's."""
    train, (held, held_xml) = camelyon_slides(root)
    names = []
    for k, (path, xml) in enumerate([*train, (held, held_xml)]):
        name = "holdout" if path == held else path.stem
        _tiles(path, xml, folder / f"tiles_{name}", sizes.level, sizes.tile)
        names.append(name)
        yield Progress(k + 1, len(train) + 1, {"slide": path.stem})
    return {
        "train": [f"tiles_{n}" for n in names[:-1]],
        "holdout": ["tiles_holdout"],
        "holdout_slide": str(held),
        "holdout_annotations": str(held_xml),
        "level": sizes.level,
    }


def attack_tiles(folder: Path, data: dict[str, Any], side: int, count: int) -> Any:
    """The ``count`` tiles of ``side`` level pixels of the held-out slide with the most
    tumour cells, within the tumours' bounding box (``experiments.tiles.Tiles``)."""
    import torch

    from napari_cpadv.annotations import read_annotations
    from napari_cpadv.experiments.tiles import Tiles, region_tiles
    from napari_cpadv.slide import open_slide

    slide = open_slide(folder / data["holdout_slide"])
    anns = read_annotations(folder / data["holdout_annotations"])
    if not anns:
        raise FormatError(folder / data["holdout_annotations"], "holds no tumour to attack")
    points = np.concatenate([a.exterior for a in anns])
    (x0, y0), (x1, y1) = points.min(0).astype(int), np.ceil(points.max(0)).astype(int)
    tiles = region_tiles(
        slide, data["level"], (int(x0), int(y0), int(x1 - x0), int(y1 - y0)), side, annotations=anns
    )
    labels = np.asarray(tiles.labels)
    best = np.argsort(-labels.reshape(len(labels), -1).mean(1), kind="stable")[:count]
    return Tiles(
        tiles.x[torch.from_numpy(best)],
        [tiles.positions[i] for i in best],
        labels[best],
        tiles.level,
        tiles.cell,
    )

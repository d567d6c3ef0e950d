"""The patches seed 001 learns from: painted with known truth, or PanNuke's breast tissue.

Both give a ``models.data.TileSet`` of 224 x 224 patches with the tumour-nucleus counts
that seed 001's rule labels (positive with at least 5 neoplastic nuclei, negative with
none, others left out).

* ``synthetic_patches`` paints slides (``slide.synthetic``) until there are enough
  patches of each class, cuts level-0 patches with their truth (``annotations.dataset``)
  and keeps a seeded random choice of the paper's counts (1,157 positive, 878 negative,
  or fewer under ``--quick``).
* ``pannuke_patches`` reads PanNuke folds as the dataset ships them (per fold
  ``images.npy`` ``(N, 256, 256, 3)``, ``types.npy`` ``(N,)`` tissue names and
  ``masks.npy`` ``(N, 256, 256, 6)``, whose channel 0 holds the neoplastic nuclei's
  instance ids and channels 0-4 every nucleus), keeps the breast patches, and crops each
  to its central 224 x 224 (the paper's patch size; PanNuke's are 256).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from napari_cpadv.errors import FormatError
from napari_cpadv.models.data import POSITIVE_NUCLEI, TileSet
from napari_cpadv.progress import Progress, Work

PATCH = 224
PAPER_COUNTS = (1157, 878)  # seed 001 §2.1: positive and negative breast patches
PANNUKE_LAYOUT = (
    "a PanNuke folder: one or more folds, each with images.npy (N, 256, 256, 3), "
    "types.npy (N,) and masks.npy (N, 256, 256, 6), masks.npy beside images.npy or in "
    "the fold's masks/ tree as PanNuke ships it (Fold 1/images/fold1/images.npy, "
    "Fold 1/masks/fold1/masks.npy)"
)


def choose(data: TileSet, positives: int, negatives: int, seed: int) -> TileSet:
    """A seeded random choice of ``positives`` and ``negatives`` labelled patches (all of a
    class when it has fewer), in a shuffled order."""
    patches, labels = data.patch_labels()
    rng = np.random.default_rng(seed)
    pos, neg = np.flatnonzero(labels == 1), np.flatnonzero(labels == 0)
    keep = np.concatenate(
        [
            rng.choice(pos, size=min(positives, pos.size), replace=False),
            rng.choice(neg, size=min(negatives, neg.size), replace=False),
        ]
    )
    return patches.subset(rng.permutation(keep))


def synthetic_patches(
    folder: Path,
    *,
    positives: int,
    negatives: int,
    side: int = 4096,
    tumours: int = 16,
    max_slides: int = 200,
    seed: int = 0,
) -> Work[TileSet]:
    """Paint ``side`` x ``side`` slides (seeds ``seed``, ``seed + 1``, ...) into ``folder``
    until ``positives`` and ``negatives`` labelled patches exist; returns the choice (fewer
    positives than asked only when ``max_slides`` ran out). A 4,096-pixel slide gives about
    20 positives: the paper's 1,157 take some 60 slides (a cap of 40 stopped at 795)."""
    from napari_cpadv.models.data import load_tiles

    have = [0, 0]
    folders: list[Path] = []
    for k in range(max_slides):
        patches = _paint(folder, seed + k, side, tumours)
        folders.append(patches)
        _, labels = load_tiles([patches]).patch_labels()
        have = [have[0] + int(labels.sum()), have[1] + int((labels == 0).sum())]
        done = min(have[0] / max(positives, 1), have[1] / max(negatives, 1), 1.0)
        yield Progress(round(1000 * done), 1000, {"slides": k + 1, "positives": have[0]})
        if have[0] >= positives and have[1] >= negatives:
            break
    return choose(load_tiles(folders), positives, negatives, seed)


def _paint(folder: Path, seed: int, side: int, tumours: int) -> Path:
    """One synthetic slide and its level-0 224-pixel patches with nucleus counts."""
    from napari_cpadv.annotations import Annotation, write_annotations
    from napari_cpadv.annotations.dataset import write_tile_dataset
    from napari_cpadv.slide import open_slide
    from napari_cpadv.slide.synthetic import make_slide

    path = folder / f"slide{seed}.tif"
    truth = make_slide(path, shape=(side, side), seed=seed, n_tumours=tumours)
    truth_json = truth.write_json(path.with_suffix(".truth.json"))
    anns = [Annotation(p.exterior, p.holes, cls="Tumor") for p in truth.tumours]
    xml = write_annotations(anns, path.with_suffix(".xml"))
    out = folder / f"patches{seed}"
    write_tile_dataset(open_slide(path), xml, level=0, size=PATCH, out=out, truth=truth_json)
    return out


def pannuke_folds(root: Path) -> list[tuple[Path, Path, Path]]:
    """``(images, types, masks)`` of every fold under ``root``; refuses another layout."""
    if not root.is_dir():
        raise FormatError(root, f"is not a folder; expected {PANNUKE_LAYOUT}")
    found = []
    for images in sorted(root.rglob("images.npy")):
        types = images.with_name("types.npy")
        masks = _masks_beside(images)
        missing = [p.name for p in (types, masks) if p is None or not p.is_file()]
        if missing:
            raise FormatError(images.parent, f"has images.npy but no {', '.join(missing)}")
        found.append((images, types, masks))
    if not found:
        raise FormatError(root, f"holds no images.npy; expected {PANNUKE_LAYOUT}")
    return found


def _masks_beside(images: Path) -> Path:
    here = images.with_name("masks.npy")
    if here.is_file():
        return here
    parts = list(images.parent.parts)
    for i in range(len(parts) - 1, -1, -1):  # Fold 1/images/fold1 -> Fold 1/masks/fold1
        if parts[i] == "images":
            return Path(*parts[:i], "masks", *parts[i + 1 :], "masks.npy")
    return here


def pannuke_patches(root: Path, *, tissue: str = "Breast") -> Work[TileSet]:
    """Every ``tissue`` patch of the PanNuke folds under ``root``, cropped to 224 x 224."""
    items: list[dict[str, Any]] = []
    folds = pannuke_folds(root)
    for k, (images_path, types_path, masks_path) in enumerate(folds):
        images, types, masks = (_load(p) for p in (images_path, types_path, masks_path))
        if not (len(images) == len(types) == len(masks)) or images.shape[1:] != (256, 256, 3):
            raise FormatError(
                images_path.parent,
                f"images {images.shape}, types {types.shape}, masks {masks.shape}: "
                f"expected {PANNUKE_LAYOUT}",
            )
        if masks.ndim != 4 or masks.shape[-1] < 6:
            raise FormatError(
                masks_path, f"masks of shape {masks.shape}: expected (N, 256, 256, 6)"
            )
        for i in np.flatnonzero(np.char.lower(types.astype(str)) == tissue.lower()):
            items.append(_pannuke_item(images[i], masks[i], f"{images_path.parent.name}/{i}"))
        yield Progress(k + 1, len(folds), {"fold": str(images_path.parent), "patches": len(items)})
    if not items:
        raise FormatError(root, f"holds no {tissue} patches (types.npy)")
    return TileSet(
        np.stack([it["image"] for it in items]),
        np.stack([it["mask"] for it in items]),
        np.array([it["mask"].mean() for it in items]),
        np.array([it["nuclei"] for it in items]),
        np.array([it["tumour_nuclei"] for it in items]),
        tuple(it["name"] for it in items),
    )


def _load(path: Path) -> np.ndarray:
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise FormatError(path, f"is not a NumPy array file ({exc})") from exc


def _pannuke_item(image: np.ndarray, mask: np.ndarray, name: str) -> dict[str, Any]:
    lo = (image.shape[0] - PATCH) // 2
    window = (slice(lo, lo + PATCH), slice(lo, lo + PATCH))
    pixels = np.clip(np.rint(np.asarray(image[window], dtype=np.float64)), 0, 255)
    ids = np.asarray(mask[window][..., :5])
    neoplastic = ids[..., 0]
    cells = (neoplastic > 0).reshape(PATCH // 4, 4, PATCH // 4, 4).mean(axis=(1, 3)) >= 0.5
    return {
        "image": pixels.astype(np.uint8),
        "mask": cells,
        "nuclei": sum(len(np.unique(ids[..., c][ids[..., c] > 0])) for c in range(5)),
        "tumour_nuclei": len(np.unique(neoplastic[neoplastic > 0])),
        "name": name,
    }


def describe(data: TileSet) -> dict[str, Any]:
    """Sizes of a labelled patch set, for the report."""
    _, labels = data.patch_labels()
    return {
        "patches": len(labels),
        "positive": int(labels.sum()),
        "negative": int((labels == 0).sum()),
        "rule": f"positive with >= {POSITIVE_NUCLEI} tumour nuclei, negative with none",
    }


class Source:
    """Where a reproduction's data come from: painted (``synthetic``) or the folders given.

    ``paths`` are classified by their layout: a PanNuke folder (``images.npy`` folds) serves
    seed 001, a Camelyon16 folder (``training/tumor``) seed 000.
    """

    def __init__(self, paths: list[str] | None = None) -> None:
        self.pannuke: Path | None = None
        self.camelyon: Path | None = None
        for text in paths or []:
            path = Path(text)
            if (path / "training" / "tumor").is_dir():
                self.camelyon = path
            elif path.is_dir() and next(path.rglob("images.npy"), None) is not None:
                self.pannuke = path
            else:
                raise FormatError(
                    path,
                    "is neither a Camelyon16 folder (training/tumor/*.tif, training/normal/"
                    f"*.tif, lesion_annotations/*.xml) nor {PANNUKE_LAYOUT}",
                )

    @property
    def synthetic(self) -> bool:
        return self.pannuke is None and self.camelyon is None

    @property
    def key(self) -> dict[str, Any]:
        """What the data steps' fingerprints hold: the kind, and each folder's listing."""
        return {
            "pannuke": _listing(self.pannuke),
            "camelyon16": _listing(self.camelyon),
        }

    def describe(self) -> str:
        if self.synthetic:
            return "synthetic (painted with known truth)"
        return ", ".join(
            f"{name} at {path}"
            for name, path in (("PanNuke", self.pannuke), ("Camelyon16", self.camelyon))
            if path is not None
        )

    def seed001(self, folder: Path, sizes: Any, seed: int) -> Work[TileSet]:
        """Seed 001's labelled patches: PanNuke's breast patches when given, else painted."""
        if self.pannuke is not None:
            found = yield from pannuke_patches(self.pannuke)
            return choose(found, sizes.positives, sizes.negatives, seed)
        if self.camelyon is not None:
            raise FormatError(self.camelyon, "seed 001 needs PanNuke, not Camelyon16: give both")
        return (
            yield from synthetic_patches(
                folder,
                positives=sizes.positives,
                negatives=sizes.negatives,
                side=sizes.slide_side,
                seed=seed,
            )
        )


def _listing(root: Path | None) -> list[tuple[str, int, int]] | None:
    """Every file under ``root`` with its size and modification time (a cheap fingerprint
    of a dataset of many gigabytes)."""
    if root is None:
        return None
    return [
        (str(p.relative_to(root)), p.stat().st_size, int(p.stat().st_mtime))
        for p in sorted(root.rglob("*"))
        if p.is_file()
    ]


def seed000_slides(source: Source, folder: Path, sizes: Any, seed: int) -> Work[dict[str, Any]]:
    """Seed 000's tiles: Camelyon16's when given, else painted slides'."""
    from napari_cpadv.reproduce.seed000_data import camelyon16, synthetic_slides

    if source.camelyon is not None:
        return (yield from camelyon16(source.camelyon, folder, sizes))
    if source.pannuke is not None:
        raise FormatError(source.pannuke, "seed 000 needs Camelyon16, not PanNuke: give both")
    return (yield from synthetic_slides(folder, sizes, seed))

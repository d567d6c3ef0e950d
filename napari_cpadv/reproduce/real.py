"""Both papers' attacks on real tissue (issue 28, item 7): seed 000's Fig. 10 and seed 001's
Fig. 4 on the stripes of the carcinoma field that the shipped real-tissue weights never saw.

The field (``sample_data/hgsc_nest.*``: histolytics 0.3.0, 1,500 x 1,500 pixels at about
0.5 µm, every nucleus segmented and typed by a model and curated by its authors, not by a
pathologist) was cut into three vertical stripes by ``make weights-he``; ``dae-he``,
``sparse-he`` and ``resnet18-he`` keep the fold whose stripe (the last) no training input
reached, and their records name it. Fig. 10 attacks the cell detectors' stripe (level 1,
1.0 µm per pixel: FGSM on ``dae-he``, the latent attack on ``sparse-he``, each scored on
both, beside noise of each attack's norm and the null model) at seed 000's per-pixel
budget; Fig. 4 runs seed 001's PGD per norm on the classifier's stripe (112-pixel level-0
patches labelled by seed 001's rule). Every δ is scored on the image saved in 8 bits, with
its PSNR and SSIM. Two fields from one source: a small, honest measurement, not a claim
about Camelyon16 or PanNuke. The weights are always the committed ``*-he`` files (their
SHA-256 is in each step's fingerprint); ``--weights`` applies to the papers' own steps.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from napari_cpadv.progress import Work, within
from napari_cpadv.reproduce import seed001
from napari_cpadv.reproduce.steps import Paper

CELL_DETECTORS = ("dae", "sparse")


@dataclass(frozen=True)
class Sizes:
    """How big each experiment on the real field is (``attack_tiles``, ``patches``: 0 for
    every one the stripe holds)."""

    attack_tile: int = 248  # level-1 pixels: the cell detectors' stripe is 252 wide
    attack_tiles: int = 0
    steps: int = 100
    patches: int = 0
    fig4_steps: int = 100
    budgets: dict[str, tuple[float, ...]] = field(default_factory=dict)  # {}: seed 001's
    lca_iterations: int | None = None  # a cap on sparse-he's LCA (None: its own)


FULL = Sizes()
QUICK = Sizes(
    attack_tile=128,
    attack_tiles=6,
    steps=5,
    patches=40,
    fig4_steps=8,
    budgets=seed001.QUICK.budgets,  # seed 001's quick budgets: the rows stand side by side
)
TINY = Sizes(
    attack_tile=64,
    attack_tiles=2,
    steps=2,
    patches=8,
    fig4_steps=2,
    budgets={"l2": (0.25, 2.0), "linf": (0.5, 8.0)},
    lca_iterations=20,  # as seed 000's --tiny coder: the pipeline, not its numbers
)


def field_files() -> dict[str, Path]:
    """The committed field, its annotations and nuclei, and the three real-tissue weights."""
    from napari_cpadv.slide.synthetic import SAMPLE_DATA

    base = SAMPLE_DATA / "hgsc_nest"
    files = {
        "slide": base.with_suffix(".tif"),
        "annotations": base.with_suffix(".geojson"),
        "truth": base.with_suffix(".truth.json"),
    }
    for name in (*CELL_DETECTORS, "resnet18"):
        files[name] = SAMPLE_DATA / "weights" / f"{name}-he.safetensors"
    return files


class Real(Paper):
    """The real-tissue steps over one reproduction folder (``reproduce.steps.Steps``)."""

    AFTER: ClassVar[dict[str, tuple[str, ...]]] = {
        "real/data": (),
        "real/fig10": ("real/data",),
        "real/fig4": ("real/data",),
        "real/study": ("real/data",),
    }

    def parts(self) -> list[tuple[str, float, Any]]:
        return [
            ("real/data", 0.5, self.data_step),
            ("real/fig10", 4, self.fig10_step),
            ("real/fig4", 3, self.fig4_step),
            ("real/study", 1, self.study_step),
        ]

    def data_step(self) -> Work[dict[str, Any]]:
        from napari_cpadv.models.weights import sha256

        files = field_files()
        missing = [str(p) for p in files.values() if not p.is_file()]
        if missing:
            from napari_cpadv.errors import FormatError

            raise FormatError(missing[0], "missing: `make weights-he` trains the *-he weights")
        shas = {k: sha256(p) for k, p in files.items()}
        return self.step("real/data", {**self.common, "files": shas}, self._data)

    def _data(self, folder: Path) -> Work[dict[str, Any]]:
        from napari_cpadv.annotations import read_annotations
        from napari_cpadv.experiments.spatial import Field
        from napari_cpadv.slide import open_slide

        files = field_files()
        slide = open_slide(files["slide"])
        anns = read_annotations(files["annotations"])
        stripes = {name: _stripe(files[name]) for name in (*CELL_DETECTORS, "resnet18")}
        if any(stripes["dae"][k] != stripes["sparse"][k] for k in ("level", "columns")):
            raise ValueError(
                f"dae-he and sparse-he were held out on different stripes "
                f"({stripes['dae']} and {stripes['sparse']}): no transfer between them"
            )
        cells = _cell_tiles(Field(slide, stripes["dae"]["level"], anns), stripes["dae"], self.sizes)
        patches = _patches(
            Field(slide, stripes["resnet18"]["level"], anns, str(files["truth"])),
            stripes["resnet18"],
            self.sizes.patches,
            self.seed,
        )
        np.savez(folder / "tiles.npz", **cells.pop("arrays"))
        np.savez(folder / "patches.npz", **patches.pop("arrays"))
        yield from ()
        return {"stripes": stripes, "tiles": cells, "patches": patches}

    def arrays(self, name: str) -> Any:
        return np.load(self.steps.folder("real/data") / f"{name}.npz")

    def fig10_step(self) -> Work[dict[str, Any]]:
        return self.step("real/fig10", self.common, self._fig10)

    def _fig10(self, folder: Path) -> Work[dict[str, Any]]:
        import torch

        from napari_cpadv.attacks.base import AttackSpec, saved_visibility
        from napari_cpadv.attacks.projections import Budget
        from napari_cpadv.experiments.tiles import Tiles
        from napari_cpadv.experiments.transfer import transfer
        from napari_cpadv.models import weights as W
        from napari_cpadv.reproduce.seed000 import RMS_25

        files, data = field_files(), self.steps.results["real/data"]["tiles"]
        detectors = {n: W.load(files[n], expect=n, device=self.device) for n in CELL_DETECTORS}
        cap = self.sizes.lca_iterations
        if cap is not None:
            detectors["sparse"].lca.iterations = min(cap, detectors["sparse"].lca.iterations)
        a = self.arrays("tiles")
        x = torch.from_numpy(a["x"]).permute(0, 3, 1, 2).float().div(255)
        positions = [(int(r), int(c)) for r, c in a["positions"]]
        tiles = Tiles(x, positions, a["labels"], data["level"], 4)
        specs = {
            n: AttackSpec(
                d.natural_attack,
                Budget("l2", RMS_25, "per_pixel"),
                data["level"],
                steps=self.sizes.steps,
                tile=data["side"],
                seed=self.seed,
            )
            for n, d in detectors.items()
        }
        kept: dict[str, torch.Tensor] = {}
        work = transfer(detectors, tiles, specs, device=self.device, batch=2, keep=kept)
        report = yield from within(work, 0, 0.95)

        report["visibility"] = {
            row: saved_visibility(x, delta) for row, delta in kept.items() if row != "clean"
        }
        return report

    def fig4_step(self) -> Work[dict[str, Any]]:
        return self.step("real/fig4", self.common, self._fig4)

    def _fig4(self, folder: Path) -> Work[dict[str, Any]]:
        from napari_cpadv.experiments.norms import BUDGETS, norm_panels
        from napari_cpadv.models import weights as W

        model = W.load(field_files()["resnet18"], expect="resnet18", device=self.device)
        a = self.arrays("patches")
        return (
            yield from norm_panels(
                model,
                a["images"],
                a["labels"],
                budgets=self.sizes.budgets or BUDGETS,
                steps=self.sizes.fig4_steps,
                seed=self.seed,
                device=self.device,
            )
        )

    def study_step(self) -> Work[dict[str, Any]]:
        return self.step("real/study", self.common, self._study)

    def _study(self, folder: Path) -> Work[dict[str, Any]]:
        """Seed 001 §2.3's cases on real tissue: the stripe's positive patches that
        ``resnet18-he`` gets right and PGD-L∞ at seed 001's example budget flips, as the
        image pairs ``cpadv study create --preset seed001`` builds a blinded study from.
        The stripe holds few positives: the cases are as many as it gives, not 20."""
        from napari_cpadv.models import weights as W
        from napari_cpadv.reproduce.seed001 import FULL, STUDY_CASES
        from napari_cpadv.reproduce.study_cases import study_cases

        model = W.load(field_files()["resnet18"], expect="resnet18", device=self.device)
        a = self.arrays("patches")
        report = yield from study_cases(
            model,
            a["images"],
            a["labels"],
            folder,
            cases=STUDY_CASES,
            budget_linf=FULL.example_linf,
            steps=self.sizes.fig4_steps,
            seed=self.seed,
            device=self.device,
        )
        report["build"] = "cpadv study create real/study/pairs --preset seed001 --out S --readers R"
        report["positives"] = int(a["labels"].sum())
        return report


def _stripe(weights: Path) -> dict[str, Any]:
    """The held-out stripe a ``cpadv train --field`` record names: level, columns, side."""
    from napari_cpadv.models.weights import read_config

    spatial = read_config(weights).get("training", {}).get("spatial")
    if not spatial:
        from napari_cpadv.errors import FormatError

        raise FormatError(weights, "not trained by `cpadv train --field`: no held-out stripe")
    c0, c1 = spatial["held_out_columns"]
    return {"level": spatial["level"], "columns": [c0, c1], "tile": spatial.get("tile")}


def _cell_tiles(fld: Any, stripe: dict[str, Any], s: Sizes) -> dict[str, Any]:
    """The cell detectors' attack tiles: whole ``s.attack_tile`` tiles of the stripe on a
    grid from its corner, the ``s.attack_tiles`` with the most tumour cells first."""
    from napari_cpadv.experiments.spatial import Fold, stripe_patches
    from napari_cpadv.experiments.tiles import read_tiles

    c0, c1 = stripe["columns"]
    g = fld.slide.geometry[fld.level]
    side = min(s.attack_tile, (c1 - c0) // 4 * 4)
    at = stripe_patches(fld, Fold(0, c0, c1, 0, g.cols), side)
    tiles = read_tiles(fld.slide, fld.level, at, side, annotations=fld.annotations)
    labels = np.asarray(tiles.labels, bool)
    order = np.argsort(-labels.reshape(len(labels), -1).mean(1), kind="stable")
    keep = order[: s.attack_tiles] if s.attack_tiles else order
    x = tiles.x[keep].permute(0, 2, 3, 1).mul(255).round().numpy().astype(np.uint8)
    return {
        "level": fld.level,
        "side": side,
        "count": len(keep),
        "of": len(at),
        "cells": int(labels[keep].size),
        "tumour_cells": int(labels[keep].sum()),
        "arrays": {"x": x, "labels": labels[keep], "positions": np.array(at)[keep]},
    }


def _patches(fld: Any, stripe: dict[str, Any], count: int, seed: int) -> dict[str, Any]:
    """The classifier's stripe: its whole patches labelled by seed 001's rule (at least 5
    tumour nuclei: positive; none: negative; the rest left out), ``count`` of them drawn
    stratified by class (0: all)."""
    from napari_cpadv.experiments.spatial import Fold, stripe_patches, tile_set

    c0, c1 = stripe["columns"]
    side = stripe["tile"]
    g = fld.slide.geometry[fld.level]
    at = stripe_patches(fld, Fold(0, c0, c1, 0, g.cols), side)
    every = tile_set(fld, at, side)
    keep = (every.tumour_nuclei >= 5) | (every.tumour_nuclei == 0)
    labels = (every.tumour_nuclei[keep] >= 5).astype(np.int64)
    index = np.flatnonzero(keep)
    if count and count < len(index):
        rng = np.random.default_rng(seed)
        pos, neg = index[labels == 1], index[labels == 0]
        k = round(count * len(pos) / len(index))
        index = np.sort(
            np.concatenate([rng.permutation(pos)[:k], rng.permutation(neg)[: count - k]])
        )
        labels = (every.tumour_nuclei[index] >= 5).astype(np.int64)
    return {
        "level": fld.level,
        "side": side,
        "count": len(index),
        "of": len(at),
        "left_out": int((~keep).sum()),
        "positive": int(labels.sum()),
        "negative": int(len(labels) - labels.sum()),
        "arrays": {"images": np.asarray(every.images)[index], "labels": labels,
                   "positions": np.array(at)[index]},
    }  # fmt: skip

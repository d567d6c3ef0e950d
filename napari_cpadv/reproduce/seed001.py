"""Seed 001 (Foote et al.) as steps: data, Table 1a, the model and its trajectory, Figs.
2a, 2b, 4, 1/3 and 5, §3.3 and the cases of §2.3's pathologist study.

Sizes are the paper's (``FULL``: 1,157 + 878 patches, a 64-wide ResNet-18 for 25 epochs,
5 x 3 folds, 100 attack steps) or small enough for a 2-core CPU in minutes (``QUICK``).
The final model is trained on a stratified two thirds of the patches and every attack
runs on the third it never saw (the paper's universal perturbation is learnt on training
positives and tested on held-out ones; its other experiments use the test set).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from napari_cpadv.progress import Work
from napari_cpadv.reproduce.steps import Paper

STUDY_CASES = 20  # seed 001 §2.3


@dataclass(frozen=True)
class Sizes:
    """How big each experiment of seed 001 is."""

    positives: int = 1157
    negatives: int = 878
    slide_side: int = 4096
    width: int = 64
    epochs: int = 25
    batch: int = 16
    lr: float = 0.01
    runs: int = 5
    folds: int = 3
    steps: int = 100
    attack_patches: int = 200
    landscape_points: int = 21
    landscape_patches: int = 128
    umap_patches: int = 200
    universal_epochs: int = 1
    universal_linf: float = 8.0
    example_linf: float = 2.0
    budgets: dict[str, tuple[float, ...]] = field(default_factory=dict)


FULL = Sizes()
QUICK = Sizes(
    positives=36,
    negatives=30,
    slide_side=3072,
    width=8,
    epochs=6,
    batch=8,
    lr=0.1,
    runs=5,
    folds=3,
    steps=8,
    attack_patches=12,
    landscape_points=5,
    landscape_patches=12,
    umap_patches=12,
    budgets={"l0": (0.02, 0.2), "l1": (0.25, 2.0), "l2": (0.25, 2.0), "linf": (0.5, 8.0)},
)
# toy sizes: seconds on 2 CPU cores, a smoke test of every step (CI, the GPU script's
# `--tiny`); its numbers say nothing about the paper
TINY = Sizes(
    positives=15,
    negatives=12,
    slide_side=2048,
    width=4,
    epochs=2,
    batch=8,
    lr=0.1,
    runs=1,
    folds=3,
    steps=3,
    attack_patches=6,
    landscape_points=3,
    landscape_patches=6,
    umap_patches=8,
    budgets={"l0": (0.02, 0.2), "l1": (0.25, 2.0), "l2": (0.25, 2.0), "linf": (0.5, 8.0)},
)


def _split(labels: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A stratified two-thirds / one-third split (the first fold of the first CV run)."""
    from sklearn.model_selection import StratifiedKFold

    split = StratifiedKFold(3, shuffle=True, random_state=seed)
    train, test = next(split.split(np.zeros(len(labels)), labels))
    return train, test


class Seed001(Paper):
    """The steps of seed 001 over one reproduction folder (``reproduce.steps.Steps``)."""

    AFTER: ClassVar[dict[str, tuple[str, ...]]] = {  # each step, the steps whose files it reads
        "seed001/data": (),
        "seed001/table1a": ("seed001/data",),
        "seed001/model": ("seed001/data",),
        "seed001/fig2b": ("seed001/model",),
        "seed001/fig4": ("seed001/model",),
        "seed001/fig1_3": ("seed001/model",),
        "seed001/fig2a": ("seed001/model",),
        "seed001/universal": ("seed001/model",),
        "seed001/study": ("seed001/model",),
    }

    def parts(self) -> list[tuple[str, float, Any]]:
        """(name, share of the bar, work) of every step, in order."""
        return [
            ("seed001/data", 1, self.data_step),
            ("seed001/table1a", 6, self.crossval_step),
            ("seed001/model", 2, self.model_step),
            ("seed001/fig2b", 1, self.landscape_step),
            ("seed001/fig4", 4, self.norms_step),
            ("seed001/fig1_3", 0.5, self.examples_step),
            ("seed001/fig2a", 1, self.umap_step),
            ("seed001/universal", 2, self.universal_step),
            ("seed001/study", 0.5, self.study_step),
        ]

    # -- data and model -------------------------------------------------------------
    def data_step(self) -> Work[dict[str, Any]]:
        return self.step("seed001/data", {**self.common, "data": self.data.key}, self._data)

    def _data(self, folder: Path) -> Work[dict[str, Any]]:
        from napari_cpadv.reproduce.data import describe

        patches = yield from self.data.seed001(folder, self.sizes, self.seed)
        np.savez(folder / "patches.npz", **_arrays(patches))
        asked = {"positive": self.sizes.positives, "negative": self.sizes.negatives}
        return {**describe(patches), "asked": asked, "source": self.data.describe()}

    def patches(self) -> Any:
        from napari_cpadv.models.data import TileSet

        with np.load(self.steps.folder("seed001/data") / "patches.npz") as z:
            return TileSet(
                z["images"],
                z["masks"],
                z["tumour_cells"],
                z["nuclei"],
                z["tumour_nuclei"],
                tuple(z["names"].tolist()),
            )

    def crossval_step(self) -> Work[dict[str, Any]]:
        from napari_cpadv.experiments.crossval import cross_validate

        s = self.sizes
        folds = [[run, fold] for run in range(s.runs) for fold in range(s.folds)]

        def work(folder: Path) -> Work[dict[str, Any]]:
            return cross_validate(
                self.patches(),
                runs=s.runs,
                folds=s.folds,
                width=s.width,
                epochs=s.epochs,
                batch=s.batch,
                lr=s.lr,
                seed=self.seed,
                device=self.device,
                cluster=self.cluster,
                ledger=self.steps.ledger("seed001/table1a", folds),
            )

        return self.step("seed001/table1a", self.common, work)

    def model_step(self) -> Work[dict[str, Any]]:
        inputs = {**self.common, "weights": _sha(self.weights.get("resnet18"))}
        return self.step("seed001/model", inputs, self._model)

    def _model(self, folder: Path) -> Work[dict[str, Any]]:
        from napari_cpadv.models import weights as W
        from napari_cpadv.models.data import holdout_metrics
        from napari_cpadv.models.detector import make
        from napari_cpadv.models.train import train_resnet

        data = self.patches()
        _, labels = data.patch_labels()
        train, test = _split(labels, self.seed)
        trajectory: list[np.ndarray] = []
        given = self.weights.get("resnet18")
        if given is not None:
            model = W.load(given, expect="resnet18")
            yield from ()
        else:
            model = make("resnet18", width=self.sizes.width)
            yield from train_resnet(
                model,
                data.subset(train),
                epochs=self.sizes.epochs,
                batch=self.sizes.batch,
                lr=self.sizes.lr,
                seed=self.seed,
                device=self.device,
                trajectory=trajectory,
            )
            np.save(folder / "trajectory.npy", np.stack(trajectory))
        metrics = holdout_metrics(model, data.subset(test), device=self.device)
        W.save(model.to("cpu"), folder / "resnet18.safetensors", metrics=metrics)
        np.savez(folder / "split.npz", train=train, test=test)
        return {
            "given_weights": self.weights.get("resnet18"),
            "holdout": metrics,
            "train": len(train),
            "test": len(test),
            "snapshots": len(trajectory),
        }

    def model(self) -> Any:
        from napari_cpadv.models import weights as W

        return W.load(
            self.steps.folder("seed001/model") / "resnet18.safetensors", device=self.device
        )

    def split(self, which: str) -> Any:
        data = self.patches()
        with np.load(self.steps.folder("seed001/model") / "split.npz") as z:
            return data.subset(z[which])

    # -- figures and tables ----------------------------------------------------------
    def landscape_step(self) -> Work[dict[str, Any]]:
        return self.step("seed001/fig2b", self.common, self._landscape)

    def _landscape(self, folder: Path) -> Work[dict[str, Any]]:
        from napari_cpadv.experiments.landscape import loss_landscape

        path = self.steps.folder("seed001/model") / "trajectory.npy"
        if not path.is_file():
            yield from ()
            return {"skipped": "the weights were given (--weights): no training trajectory"}
        train, labels = self.split("train").patch_labels()
        keep = np.random.default_rng(self.seed).permutation(len(labels))[
            : self.sizes.landscape_patches
        ]
        return (
            yield from loss_landscape(
                self.model(),
                list(np.load(path)),
                train.images[keep],
                labels[keep],
                points=self.sizes.landscape_points,
                device=self.device,
            )
        )

    def _test(self, count: int) -> tuple[np.ndarray, np.ndarray]:
        test, labels = self.split("test").patch_labels()
        return test.images[:count], labels[:count]

    def norms_step(self) -> Work[dict[str, Any]]:
        from napari_cpadv.experiments.norms import BUDGETS, norm_panels

        budgets = self.sizes.budgets or BUDGETS

        def work(folder: Path) -> Work[dict[str, Any]]:
            images, labels = self._test(self.sizes.attack_patches)
            return norm_panels(
                self.model(),
                images,
                labels,
                budgets=budgets,
                steps=self.sizes.steps,
                seed=self.seed,
                device=self.device,
            )

        return self.step("seed001/fig4", self.common, work)

    def examples_step(self) -> Work[dict[str, Any]]:
        return self.step("seed001/fig1_3", self.common, self._examples)

    def _examples(self, folder: Path) -> Work[dict[str, Any]]:
        from napari_cpadv.experiments.examples import flipped_examples, save_examples
        from napari_cpadv.experiments.norms import budget_of

        images, labels = self._test(self.sizes.attack_patches)
        found = yield from flipped_examples(
            self.model(),
            images,
            labels,
            budget=budget_of("linf", self.sizes.example_linf),
            steps=self.sizes.steps,
            seed=self.seed,
            device=self.device,
        )
        return {"budget_linf": self.sizes.example_linf, "examples": save_examples(folder, found)}

    def umap_step(self) -> Work[dict[str, Any]]:
        from napari_cpadv.experiments.features import umap_with_track
        from napari_cpadv.experiments.norms import budget_of

        def work(folder: Path) -> Work[dict[str, Any]]:
            images, _ = self._test(self.sizes.umap_patches)
            try:
                return (
                    yield from umap_with_track(
                        self.model(),
                        images,
                        budget=budget_of("linf", self.sizes.example_linf),
                        steps=self.sizes.steps,
                        seed=self.seed,
                        device=self.device,
                    )
                )
            except ValueError as exc:  # a model that calls no patch positive: said, not fatal
                return {"skipped": str(exc)}

        return self.step("seed001/fig2a", self.common, work)

    def universal_step(self) -> Work[dict[str, Any]]:
        return self.step("seed001/universal", self.common, self._universal)

    def _universal(self, folder: Path) -> Work[dict[str, Any]]:
        from napari_cpadv.attacks.base import AttackSpec
        from napari_cpadv.attacks.projections import Budget
        from napari_cpadv.experiments.examples import universal_example
        from napari_cpadv.experiments.universal_study import universal_study

        budget = Budget("linf", self.sizes.universal_linf, "per_pixel")
        spec = AttackSpec(
            "universal", budget, 0, tile=224, epochs=self.sizes.universal_epochs, seed=self.seed
        )  # level 0: PanNuke patches are level-0 pixels
        model, held = self.model(), self.split("test")
        delta, report = yield from universal_study(
            model, self.split("train"), held, spec, device=self.device, batch=1
        )
        np.save(folder / "delta.npy", delta.cpu().numpy())
        report["example"] = universal_example(model, held, delta, folder)
        return report

    def study_step(self) -> Work[dict[str, Any]]:
        return self.step("seed001/study", self.common, self._study)

    def _study(self, folder: Path) -> Work[dict[str, Any]]:
        from napari_cpadv.reproduce.study_cases import study_cases

        test, labels = self.split("test").patch_labels()
        return (
            yield from study_cases(
                self.model(),
                test.images,
                labels,
                folder,
                cases=STUDY_CASES,
                budget_linf=self.sizes.example_linf,
                steps=self.sizes.steps,
                seed=self.seed,
                device=self.device,
            )
        )


def _arrays(data: Any) -> dict[str, Any]:
    return {
        "images": data.images,
        "masks": data.masks,
        "tumour_cells": data.tumour_cells,
        "nuclei": data.nuclei,
        "tumour_nuclei": data.tumour_nuclei,
        "names": np.asarray(data.names, dtype=str),
    }


def _sha(path: str | None) -> str | None:
    """The given weights' SHA-256 (``models.weights.sha256``), for a step's fingerprint."""
    from napari_cpadv.models.weights import sha256

    return None if path is None else sha256(Path(path))

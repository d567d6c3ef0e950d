"""Seed 000 (Strauss & Kenyon) as steps: data, the two detectors, their held-out AUC-PR
beside the null model, Figs. 2, 4 and 5 (reconstructions and first-layer features),
Fig. 6 (cell heatmaps), Fig. 10 (every detector under noise, FGSM on the DAE and the latent
attack on the sparse coder) and Figs. 7-9 (the perturbations amplified, the images side by
side).

Training slides and one held-out slide are painted (or read from Camelyon16, ``tumor_110``
held out as the paper did); tiles are cut at one level with their cell masks. ``FULL`` is
the paper's setting (512 x 512 attack tiles, 100 iterations, 512 atoms, L2 = 25 per
512 x 512 x 3 tile); ``QUICK`` shrinks every size. The budget is kept per pixel (the RMS of
25 over a 512 x 512 x 3 tile), so smaller tiles get the same visibility.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from napari_cpadv.progress import Work, within
from napari_cpadv.reproduce.steps import Paper

if TYPE_CHECKING:
    from napari_cpadv.models.detector import Detector

RMS_25 = 25 / math.sqrt(512 * 512 * 3)  # seed 000's L2 = 25 on a 512 x 512 x 3 tile, per pixel


@dataclass(frozen=True)
class Sizes:
    """How big each experiment of seed 000 is."""

    train_slides: int = 5
    side: int = 8192
    level: int = 2
    tile: int = 128
    ae_epochs: int = 4
    head_epochs: int = 10
    atoms: int = 512
    dict_epochs: float = 1.4
    dict_iterations: int | None = None
    iterations: int = 500  # the sparse coder's cap (its own default)
    attack_tile: int = 512
    attack_tiles: int = 4
    steps: int = 100


FULL = Sizes()
QUICK = Sizes(
    train_slides=1,
    side=4096,
    tile=64,
    ae_epochs=2,
    head_epochs=6,
    atoms=24,
    dict_epochs=0.5,
    dict_iterations=20,
    iterations=60,
    attack_tile=128,
    attack_tiles=2,
    steps=5,
)
# toy sizes: seconds on 2 CPU cores, a smoke test of every step (CI, the GPU script's
# `--tiny`); its numbers say nothing about the paper
TINY = Sizes(
    train_slides=1,
    side=2048,
    level=1,  # a 2,048-pixel slide has two levels
    tile=64,
    ae_epochs=1,
    head_epochs=2,
    atoms=12,
    dict_epochs=0.25,
    dict_iterations=10,
    iterations=20,
    attack_tile=64,
    attack_tiles=2,
    steps=3,
)


class Seed000(Paper):
    """The steps of seed 000 over one reproduction folder (``reproduce.steps.Steps``)."""

    AFTER: ClassVar[dict[str, tuple[str, ...]]] = {  # each step, the steps whose files it reads
        "seed000/data": (),
        "seed000/dae": ("seed000/data",),
        "seed000/sparse": ("seed000/data",),
        "seed000/fig2_4_5": ("seed000/dae", "seed000/sparse"),
        "seed000/fig10": ("seed000/dae", "seed000/sparse"),
    }

    def parts(self) -> list[tuple[str, float, Any]]:
        return [
            ("seed000/data", 1, self.data_step),
            ("seed000/dae", 3, lambda: self.train_step("dae")),
            ("seed000/sparse", 3, lambda: self.train_step("sparse")),
            ("seed000/fig2_4_5", 0.5, self.pictures_step),
            ("seed000/fig10", 4, self.transfer_step),
        ]

    def data_step(self) -> Work[dict[str, Any]]:
        inputs = {**self.common, "data": self.data.key}
        return self.step("seed000/data", inputs, self._data)

    def _data(self, folder: Path) -> Work[dict[str, Any]]:
        from napari_cpadv.reproduce.data import seed000_slides

        # the training and held-out tile folders, relative to the step's folder
        return (yield from seed000_slides(self.data, folder, self.sizes, self.seed))

    def folders(self, which: str) -> list[str]:
        root = self.steps.folder("seed000/data")
        return [str(root / f) for f in self.steps.results["seed000/data"][which]]

    def train_step(self, name: str) -> Work[dict[str, Any]]:
        from napari_cpadv.reproduce.seed001 import _sha

        inputs = {**self.common, "weights": _sha(self.weights.get(name))}
        return self.step(f"seed000/{name}", inputs, lambda f: self._train(f, name))

    def _train(self, folder: Path, name: str) -> Work[dict[str, Any]]:
        from napari_cpadv.models import weights as W
        from napari_cpadv.models.data import holdout_metrics, load_tiles
        from napari_cpadv.models.fit import Schedule, fit

        s = self.sizes
        if name in self.weights:
            detector = W.load(self.weights[name], expect=name)
            record = {"training": {"given": self.weights[name]}, "metrics": {}}
            yield from ()
        else:
            schedule = Schedule(
                autoencoder=s.ae_epochs,
                head=s.head_epochs,
                dictionary=s.dict_epochs,
                dictionary_iterations=s.dict_iterations,
            )
            hyper = {"sparse": {"atoms": s.atoms, "iterations": s.iterations}}.get(name, {})
            detector, record = yield from fit(
                name,
                self.folders("train"),
                hyper=hyper,
                schedule=schedule,
                seed=self.seed,
                device=self.device,
            )
        held = load_tiles(self.folders("holdout"))
        record["metrics"] = holdout_metrics(detector, held, device=self.device)
        W.save(detector.to("cpu"), folder / f"{name}.safetensors", **record)
        return {"metrics": record["metrics"], "given": name in self.weights}

    def detector(self, name: str) -> Any:
        from napari_cpadv.models import weights as W

        path = self.steps.folder(f"seed000/{name}") / f"{name}.safetensors"
        return W.load(path, device=self.device)

    def pictures_step(self) -> Work[dict[str, Any]]:
        return self.step("seed000/fig2_4_5", self.common, self._pictures)

    def _pictures(self, folder: Path) -> Work[dict[str, Any]]:
        from PIL import Image

        from napari_cpadv.models import figures
        from napari_cpadv.models.data import load_tiles

        # the pictures are drawn on the CPU, whatever device the run uses
        dae, sparse = self.detector("dae").cpu(), self.detector("sparse").cpu()
        held = load_tiles(self.folders("holdout"))
        tile = held.images[int(np.argmax(held.tumour_cells))]
        pictures = figures.reconstructions(tile, dae=dae, sparse=sparse, seed=self.seed)
        pictures["figure_2"] = figures.figure_2(pictures)
        pictures.update(figures.features(dae=dae, sparse=sparse))
        for name, picture in pictures.items():
            Image.fromarray(picture).save(folder / f"{name}.png")
        yield from ()
        return {"pictures": sorted(f"{n}.png" for n in pictures)}

    def transfer_step(self) -> Work[dict[str, Any]]:
        return self.step("seed000/fig10", self.common, self._transfer)

    def _transfer(self, folder: Path) -> Work[dict[str, Any]]:
        import torch

        from napari_cpadv.experiments.transfer import transfer
        from napari_cpadv.reproduce.seed000_data import attack_tiles

        s = self.sizes
        detectors = {"dae": self.detector("dae"), "sparse": self.detector("sparse")}
        tiles = attack_tiles(
            self.steps.folder("seed000/data"),
            self.steps.results["seed000/data"],
            s.attack_tile,
            s.attack_tiles,
        )
        specs = {name: _spec(d.natural_attack, s, self.seed) for name, d in detectors.items()}
        kept: dict[str, torch.Tensor] = {}
        report = yield from within(
            transfer(
                detectors,
                tiles,
                specs,
                device=self.device,
                batch=2,
                keep=kept,
                cluster=self.cluster,
            ),
            0,
            0.9,
        )
        report["null_aucpr"] = float(np.asarray(tiles.labels).mean())
        report["clean_heldout"] = {
            n: self.steps.results[f"seed000/{n}"]["metrics"] for n in detectors
        }
        arrays: dict[str, Any] = {"x": tiles.x.numpy(), "labels": np.asarray(tiles.labels)}
        arrays.update(
            {
                k.replace(" ", "_").replace("(", "").replace(")", ""): v.numpy()
                for k, v in kept.items()
            }
        )
        np.savez(folder / "tiles.npz", **arrays)
        report["heatmaps"] = _heatmaps(detectors, tiles.x, folder, self.device)
        return report


def _spec(attack: str, s: Sizes, seed: int) -> Any:
    from napari_cpadv.attacks.base import AttackSpec
    from napari_cpadv.attacks.projections import Budget

    return AttackSpec(
        attack,
        Budget("l2", RMS_25, "per_pixel"),
        s.level,
        steps=s.steps,
        tile=s.attack_tile,
        seed=seed,
    )


def _heatmaps(detectors: dict[str, Detector], x: Any, folder: Path, device: Any) -> list[str]:
    """Fig. 6: each detector's tumour probability on the first attack tile."""
    import torch

    names = []
    with torch.no_grad():
        for name, d in detectors.items():
            p = torch.sigmoid(d.tumour_logits(x[:1].to(device)))[0].cpu().numpy()
            np.save(folder / f"heatmap_{name}.npy", p.astype(np.float32))
            names.append(f"heatmap_{name}.npy")
    return names

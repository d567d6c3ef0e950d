"""Attack a region of the slide from the viewer and measure the damage.

``AttackModel`` holds what the Attack dock shows (detector, attack and its parameters,
level, tile side). ``work`` attacks the tiles of a level-0 box, writing the adversarial
slide into a new run folder of the results folder tile by tile (a crash loses at most the
tile in progress), then computes the heatmaps of every given detector before and after,
and the metrics table: AUC-PR before and after per detector, achieved L0/L1/L2/L∞ in
both units, PSNR, SSIM and success. Everything it returns is also on disk in the run
folder (``run.json`` first, then ``report.json``, ``metrics.csv``, ``metrics.json`` and the
heatmaps), so a session file can reopen it.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from napari_cpadv.experiments.metrics_table import (  # noqa: F401 (the dock's names)
    METRIC_COLUMNS,
    METRIC_LABELS,
    image_metrics,
    metrics_csv,
)
from napari_cpadv.experiments.regions import clip_regions
from napari_cpadv.experiments.runs import RunFolder
from napari_cpadv.progress import Progress, Work, within


@dataclass
class AttackModel:
    """The Attack dock's parameters (see ``attacks.base.AttackSpec``)."""

    detector: str = "dae"
    weights: str | None = None
    attack: str = "fgsm"
    norm: str = "l2"
    budget: float = 25.0
    unit: str = "total"
    steps: int = 100
    constraint: str = "exact"
    batch: int = 1
    step_size: float | None = None
    restarts: int = 1
    seed: int = 0
    epochs: int = 10
    level: int = 2
    tile: int = 512
    device: str | None = None

    def spec(self) -> Any:
        """The attack as an ``AttackSpec``; ``ValueError`` names what is wrong."""
        from napari_cpadv.attacks.base import AttackSpec
        from napari_cpadv.attacks.projections import Budget

        return AttackSpec(
            self.attack,
            Budget(self.norm, float(self.budget), self.unit),  # type: ignore[arg-type]
            self.level,
            steps=self.steps,
            tile=self.tile,
            seed=self.seed,
            epochs=self.epochs,
            step_size=self.step_size,
            restarts=self.restarts,
            constraint=self.constraint,
        )

    def load(self) -> Any:
        from napari_cpadv.models.weights import resolve

        return resolve(self.detector, self.weights or None)

    def work(
        self,
        slide_path: str | Path,
        *,
        box: tuple[float, float, float, float] | list[tuple[float, float, float, float]],
        results: str | Path | None = None,
        run: RunFolder | None = None,
        annotations: Any = None,
        detectors: dict[str, Any] | None = None,
        detector: Any = None,
        tissue_only: bool = False,
    ) -> Work[AttackOutcome]:
        """Attack the tiles of ``box`` (level-0 ``row0, col0, row1, col1``, or a list of
        boxes: selected tiles) and measure.

        ``detectors`` (name to detector) get heatmaps before and after (default: the
        attacked one); the run is written to ``run`` (``cpadv attack --out``) or a new
        folder of ``results`` (the dock), undone when the run stops before its first tile.
        ``tissue_only`` skips tiles without tissue.
        """
        from napari_cpadv.device import pick_device
        from napari_cpadv.slide import open_slide

        spec = self.spec()
        slide = open_slide(slide_path)
        if not 0 <= self.level < len(slide.geometry):
            raise ValueError(
                f"{slide.path}: level {self.level} not in 0..{len(slide.geometry) - 1}"
            )
        det = detector if detector is not None else self.load()
        detectors = dict(detectors or {})
        detectors.setdefault(self.detector, det)
        regions = clip_regions(box if isinstance(box, list) else [box], slide)
        if run is None:
            if results is None:
                raise ValueError("give a run folder or a results folder")
            run = RunFolder.create(results, f"{self.detector}-{self.attack}")
        run.write_request({"model": asdict(self), "slide": str(slide.path), "box": list(box)})
        try:
            yield Progress(0, 1, {"run": str(run.path)})  # where the results go, before work
            return (
                yield from self._run(
                    run,
                    slide,
                    spec,
                    regions,
                    det,
                    detectors,
                    annotations,
                    tissue_only,
                    pick_device(self.device),
                )
            )
        except BaseException:  # refused, failed, cancelled or interrupted
            if not run.adversarial.exists():
                run.discard()  # before any tile: leave no trace
            raise

    def _run(
        self,
        run: RunFolder,
        slide: Any,
        spec: Any,
        regions: list[tuple[int, int, int, int]],
        det: Any,
        detectors: dict[str, Any],
        annotations: Any,
        tissue_only: bool,
        device: Any,
    ) -> Work[AttackOutcome]:
        """The attack, then the heatmaps and the metrics: one monotone bar over both."""
        from napari_cpadv.experiments.regions import attack_region
        from napari_cpadv.slide.delta import open_delta

        started = time.perf_counter()
        split = attack_share(spec, detectors)
        report = yield from within(
            attack_region(
                slide.path,
                det,
                spec,
                region=regions,
                out=run.adversarial,
                annotations=annotations if det.output == "cells" else None,
                device=device,
                batch=self.batch,
                tissue_only=tissue_only,
            ),
            0.0,
            split,
            phase="attack",
        )
        adversarial = open_delta(run.adversarial)
        level_box = _level_box(report)
        attacked_box = tuple(v * float(slide.downsamples[self.level]) for v in level_box)
        heatmaps: dict[str, tuple[Any, Any]] = {}
        scores: dict[str, tuple[Any, Any]] = {}
        for k, (name, d) in enumerate(detectors.items()):
            share = (
                split + (1 - split) * k / len(detectors),
                split + (1 - split) * (k + 1) / len(detectors),
            )
            pair = yield from within(
                _before_after(d, slide, adversarial, self.level, attacked_box, device),
                *share,
                phase=f"heatmaps of {name}",
            )
            heatmaps[name] = pair
            scores[name] = _scores(pair, slide, annotations)
            for when, hm in zip(("before", "after"), pair, strict=True):
                _write_heatmap(run.heatmap(name, when), hm, slide, name)
        table = self._measure(run, slide, adversarial, level_box, report, detectors, scores)
        report["seconds_total"] = time.perf_counter() - started
        # each detector's score (AUC-PR and PR curve) on the clean and the attacked slide
        report["aucpr"] = {n: {"clean": b, "attacked": a} for n, (b, a) in scores.items()}
        run.write_report(report)  # last: a run without its report is unfinished
        report["pr_curves"] = {n: {"before": b, "after": a} for n, (b, a) in scores.items()}
        return AttackOutcome(run.path, run.adversarial, report, table, heatmaps, level_box)

    def _measure(
        self,
        run: RunFolder,
        slide: Any,
        adversarial: Any,
        level_box: tuple[int, int, int, int],
        report: dict[str, Any],
        detectors: dict[str, Any],
        scores: dict[str, tuple[Any, Any]],
    ) -> list[dict[str, Any]]:
        """The metrics table (also written as ``metrics.csv`` and ``metrics.json``), the
        perturbation image, and the report's provenance."""
        from napari_cpadv.workbench.export import write_perturbation

        size = _size(level_box)
        original = slide.read_region(self.level, level_box[0], level_box[1], *size)
        perturbed = adversarial.read_region(self.level, level_box[0], level_box[1], *size)
        image = image_metrics(original, perturbed)
        write_perturbation(perturbed.astype(np.float32) - original, run.perturbation)
        report["weights_sha256"] = {
            n: _weights_sha(n, self.weights if n == self.detector else None) for n in detectors
        }
        report["model"] = asdict(self)
        table = [
            {
                "detector": name,
                "attacked": name == self.detector,
                "aucpr_before": scores[name][0]["aucpr"] if scores[name][0] else None,
                "aucpr_after": scores[name][1]["aucpr"] if scores[name][1] else None,
                "success_rate": report["success_rate"] if name == self.detector else None,
                **image,
            }
            for name in detectors
        ]
        report["level_box"] = list(level_box)
        report["metrics"] = table
        run.write_metrics(table, metrics_csv(table))
        return table


def attack_share(spec: Any, detectors: dict[str, Any]) -> float:
    """The attack's share of a run's bar, the heatmaps before and after having the rest:
    an attack step costs about a forward and a backward pass (3 forwards), a heatmap one
    forward per detector, weighed by its ``forward_cost`` against the DAE's (a sparse
    coder's LCA costs a thousand: an estimate, used only for the bar and its time left)."""
    attack = 3.0 * max(spec.iterations, 1)
    heatmaps = sum(2.0 * getattr(d, "forward_cost", 1.0) for d in detectors.values())
    return attack / (attack + heatmaps)


def _level_box(report: dict[str, Any]) -> tuple[int, int, int, int]:
    """The level box ``(r0, c0, r1, c1)`` of the attacked tiles."""
    side = report["tile"]
    rows = [p[0] for p in report["positions"]]
    cols = [p[1] for p in report["positions"]]
    return min(rows), min(cols), max(rows) + side, max(cols) + side


@dataclass
class AttackOutcome:
    """A finished run: its folder, the delta slide, report, metrics table, heatmaps
    (name to (before, after)), and the attacked tiles' level box ``(r0, c0, r1, c1)``."""

    folder: Path
    delta: Path
    report: dict[str, Any]
    metrics: list[dict[str, Any]]
    heatmaps: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    level_box: tuple[int, int, int, int] = (0, 0, 0, 0)

    def perturbation(self) -> np.ndarray:
        """δ over the attacked tiles, ``(rows, cols, 3)`` float32 in grey levels (the run's
        ``perturbation.tif``)."""
        import tifffile

        return np.asarray(tifffile.imread(RunFolder(self.folder).perturbation), np.float32)

    @property
    def key(self) -> str:
        """``"detector attack"``: what the run's layer names start with (a re-run of the
        same detector and attack replaces its layers)."""
        return f"{self.report['detector']} {self.report['attack']}"

    def records(self) -> list[Any]:
        """Session-file records of this run's layers (their names are the layers' names):
        the adversarial slide, the perturbation (its amplification in the name) and the
        heatmaps before and after, each with its provenance."""
        from napari_cpadv.workbench.session import LayerRecord

        r = self.report
        key = self.key
        gain = amplification(self.perturbation())
        common = {
            "slide": r["slide"],
            "attack": r["model"],
            "seed": r["seed"],
            "run": str(self.folder),
        }
        out = [
            LayerRecord("adversarial", f"{key}: adversarial slide", str(self.delta), common),
            LayerRecord(
                "perturbation",
                f"{key}: perturbation (x{gain:.0f})",
                str(RunFolder(self.folder).perturbation),
                {**common, "level": r["level"], "level_box": list(self.level_box)},
            ),
        ]
        for name in self.heatmaps:
            for when in ("before", "after"):
                out.append(
                    LayerRecord(
                        "heatmap",
                        f"{key}: {name} heatmap {when}",
                        str(RunFolder(self.folder).heatmap(name, when)),
                        {
                            **common,
                            "detector": name,
                            "weights_sha256": r["weights_sha256"].get(name),
                        },
                    )
                )
        return out


def amplification(delta: np.ndarray) -> float:
    """How much the perturbation layer amplifies δ (grey levels, ``(rows, cols[, 3])``):
    its channel mean's largest magnitude is drawn at the colormap's end, 127.5."""
    values = np.asarray(delta, np.float32)
    peak = float(np.abs(values.mean(axis=2) if values.ndim == 3 else values).max())
    return 127.5 / (peak or 1.0)


def _weights_sha(name: str, weights: str | None) -> str | None:
    from napari_cpadv.models.weights import paths, shipped

    try:
        config = paths(weights or shipped(name))[1]
        return json.loads(config.read_text()).get("sha256")
    except (OSError, ValueError):
        return None


def _size(box: tuple[int, int, int, int]) -> tuple[int, int]:
    return box[2] - box[0], box[3] - box[1]


def _before_after(
    detector: Any, slide: Any, adversarial: Any, level: int, box: tuple[float, ...], device: Any
) -> Work[tuple[Any, Any]]:
    from napari_cpadv.inference.heatmap import cells_of_box, heatmap

    area = cells_of_box(slide, level, detector.cell, box)  # type: ignore[arg-type]
    before = yield from heatmap(
        detector, slide, level=level, scope="region", area=area, device=device
    )
    after = yield from heatmap(
        detector, adversarial, level=level, scope="region", area=area, device=device
    )
    return before, after


def _scores(pair: tuple[Any, Any], slide: Any, annotations: Any) -> tuple[Any, Any]:
    """``score_against`` before and after (AUC-PR and PR curve), or ``None``s."""
    from napari_cpadv.inference.detect import score_against

    if annotations is None:
        return None, None
    before, after = (score_against(hm, slide, annotations) for hm in pair)
    return before, after


def _write_heatmap(path: Path, hm: Any, slide: Any, name: str) -> None:
    from napari_cpadv.inference.zarr_io import write_heatmap

    hm.attrs.setdefault("detector", name)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_heatmap(path, hm, mpp=slide.mpp)


def results_folder(slide_path: str | Path) -> Path:
    """The default results folder: ``SLIDE_STEM.cpadv`` next to the slide."""
    p = Path(slide_path)
    return p.with_name(p.stem + ".cpadv")


def saliency_pair(
    detector: Any, slide: Any, adversarial: Any, level: int, box: tuple[int, int, int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Gradient saliency of ``detector`` on the level pixels of ``box`` before and after
    the attack (``attacks.saliency``), tile by tile of the detector's multiple."""
    import torch

    from napari_cpadv.attacks.saliency import saliency

    r0, c0, r1, c1 = box
    out = []
    for s in (slide, adversarial):
        img = s.read_region(level, r0, c0, r1 - r0, c1 - c0)
        x = torch.from_numpy(img).permute(2, 0, 1)[None].float().div(255)
        device = next(iter(detector.parameters())).device
        out.append(saliency(detector, x.to(device))[0].cpu().numpy())
    return out[0], out[1]

"""An attack run measured: the region attacked into the run's adversarial slide, then every
scored detector's heatmaps before and after, their AUC-PR against the annotations, the
image metrics of δ (L0/L1/L2/L∞ in both units, PSNR, SSIM) and the perturbation image,
all written into the run folder (``RunFolder``), ``report.json`` last. The one copy the
command line (``cpadv attack``) and the Attack dock run."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from napari_cpadv.attacks.base import AttackSpec
from napari_cpadv.experiments.metrics_table import image_metrics, metrics_csv
from napari_cpadv.experiments.runs import RunFolder
from napari_cpadv.files import replacing
from napari_cpadv.models.detector import Detector
from napari_cpadv.progress import Work, within


@dataclass(frozen=True)
class Request:
    """What a run measures beyond the spec: the attacked detector's name and weights file,
    the tile batch, the device, the annotations (the ground truth, or ``None``), whether
    tiles without tissue are skipped, the request as recorded (``model``), the cluster the
    tiles are attacked on (``None``: this process) and whether a stopped run resumes."""

    detector: str
    weights: str | None
    batch: int
    device: Any
    annotations: Any
    tissue_only: bool
    model: dict[str, Any]
    cluster: Any = None  # an inference.cluster.Cluster: the attack on its workers
    resume: bool = False  # continue the stopped run in the folder


def measure(
    run: RunFolder,
    slide: Any,
    spec: AttackSpec,
    regions: list[tuple[int, int, int, int]],
    detectors: dict[str, Detector],
    request: Request,
) -> Work[AttackOutcome]:
    """The attack (``detectors[request.detector]``), then the heatmaps and the metrics: one
    monotone bar over both."""
    from napari_cpadv.experiments.regions import attack_region
    from napari_cpadv.slide.delta import open_delta

    started = time.perf_counter()
    det = detectors[request.detector]
    split = attack_share(spec, detectors)
    report = yield from within(
        attack_region(
            slide.path,
            det,
            spec,
            region=regions,
            out=run.adversarial,
            annotations=request.annotations if det.output == "cells" else None,
            device=request.device,  # here; a cluster's workers use the cluster's
            batch=request.batch,
            tissue_only=request.tissue_only,
            cluster=request.cluster,
            resume=request.resume,
        ),
        0.0,
        split,
        phase="attack",
    )
    adversarial = open_delta(run.adversarial)
    level_box = _level_box(report)
    attacked_box = tuple(v * float(slide.downsamples[spec.level]) for v in level_box)
    heatmaps: dict[str, tuple[Any, Any]] = {}
    scores: dict[str, tuple[Any, Any]] = {}
    for k, (name, d) in enumerate(detectors.items()):
        share = (
            split + (1 - split) * k / len(detectors),
            split + (1 - split) * (k + 1) / len(detectors),
        )
        pair = yield from within(
            _before_after(d, slide, adversarial, spec.level, attacked_box, request.device),
            *share,
            phase=f"heatmaps of {name}",
        )
        heatmaps[name] = pair
        scores[name] = _scores(pair, slide, request.annotations)
        for when, hm in zip(("before", "after"), pair, strict=True):
            _write_heatmap(run.heatmap(name, when), hm, slide, name)
    table = _table(
        run, slide, adversarial, spec.level, level_box, report, detectors, scores, request
    )
    report["seconds_total"] = time.perf_counter() - started
    # each detector's score (AUC-PR and PR curve) on the clean and the attacked slide
    report["aucpr"] = {n: {"clean": b, "attacked": a} for n, (b, a) in scores.items()}
    run.write_report(report)  # last: a run without its report is unfinished
    report["pr_curves"] = {n: {"before": b, "after": a} for n, (b, a) in scores.items()}
    return AttackOutcome(run.path, run.adversarial, report, table, heatmaps, level_box)


def _table(
    run: RunFolder,
    slide: Any,
    adversarial: Any,
    level: int,
    level_box: tuple[int, int, int, int],
    report: dict[str, Any],
    detectors: dict[str, Detector],
    scores: dict[str, tuple[Any, Any]],
    request: Request,
) -> list[dict[str, Any]]:
    """The metrics table (also written as ``metrics.csv`` and ``metrics.json``), the
    perturbation image, and the report's provenance."""
    size = _size(level_box)
    original = slide.read_region(level, level_box[0], level_box[1], *size)
    perturbed = adversarial.read_region(level, level_box[0], level_box[1], *size)
    image = image_metrics(original, perturbed)
    write_perturbation(perturbed.astype(np.float32) - original, run.perturbation)
    attacked = request.detector
    report["weights_sha256"] = {
        n: _weights_sha(n, request.weights if n == attacked else None) for n in detectors
    }
    report["model"] = request.model
    table = [
        {
            "detector": name,
            "attacked": name == attacked,
            "aucpr_before": scores[name][0]["aucpr"] if scores[name][0] else None,
            "aucpr_after": scores[name][1]["aucpr"] if scores[name][1] else None,
            "success_rate": report["success_rate"] if name == attacked else None,
            **image,
        }
        for name in detectors
    ]
    report["level_box"] = list(level_box)
    report["metrics"] = table
    run.write_metrics(table, metrics_csv(table))
    return table


def attack_share(spec: AttackSpec, detectors: dict[str, Detector]) -> float:
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
    detector: Detector,
    slide: Any,
    adversarial: Any,
    level: int,
    box: tuple[float, ...],
    device: Any,
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


def saliency_pair(
    detector: Detector, slide: Any, adversarial: Any, level: int, box: tuple[int, int, int, int]
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


def write_perturbation(delta: np.ndarray, path: str | os.PathLike[str]) -> Path:
    """δ ``(rows, cols, 3)`` in grey levels as a float32 TIFF (lossless, deflate)."""
    import tifffile

    out = Path(path)
    values = np.asarray(delta, np.float32)
    rgb: dict[str, Any] = {"photometric": "rgb"} if values.ndim == 3 else {}
    with replacing(out) as tmp:
        tifffile.imwrite(tmp, values, compression="zlib", metadata=None, **rgb)
    return out

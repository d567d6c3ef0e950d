"""The Attack dock's model: what it shows (detector, attack and its parameters, level, tile
side) and ``work``, which clips the drawn box to the slide, opens the run folder and runs
the one measured attack (``experiments.measure``): the adversarial slide written tile by
tile, the heatmaps of every scored detector before and after, and the metrics table, all on
disk in the run folder (``run.json`` first, ``report.json`` last), so a session file can
reopen it; ``run_records`` are the session records of a run's layers.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from napari_cpadv.experiments.measure import AttackOutcome, Request, amplification, measure
from napari_cpadv.experiments.regions import clip_regions
from napari_cpadv.experiments.runs import RunFolder
from napari_cpadv.models.detector import Detector
from napari_cpadv.progress import Progress, Work


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
        detectors: dict[str, Detector] | None = None,
        detector: Detector | None = None,
        tissue_only: bool = False,
        cluster: Any = None,
        resume: bool = False,
    ) -> Work[AttackOutcome]:
        """Attack the tiles of ``box`` (level-0 ``row0, col0, row1, col1``, or a list of
        boxes: selected tiles) and measure.

        ``detectors`` (name to detector) get heatmaps before and after (default: the
        attacked one); the run is written to ``run`` (``cpadv attack --out``) or a new
        folder of ``results`` (the dock), undone when the run stops before its first tile.
        ``tissue_only`` skips tiles without tissue. ``cluster`` (``inference.cluster.
        Cluster``) attacks the tiles on its workers; ``resume`` continues the stopped run
        in ``run``, refused when it was asked with other settings.
        """
        from napari_cpadv.device import pick_device
        from napari_cpadv.slide import open_slide

        spec = self.spec()
        slide = open_slide(slide_path)
        slide.check_level(self.level)
        det = detector if detector is not None else self.load()
        detectors = dict(detectors or {})
        detectors.setdefault(self.detector, det)
        regions = clip_regions(box if isinstance(box, list) else [box], slide)
        if run is None:
            if results is None:
                raise ValueError("give a run folder or a results folder")
            run = RunFolder.create(results, f"{self.detector}-{self.attack}")
        asked = {"model": asdict(self), "slide": str(slide.path), "box": list(box)}
        if resume:
            if run is None or not run.adversarial.exists():
                raise ValueError("only a run folder holding a stopped run can be resumed")
            run.check_request(asked)
        else:
            run.write_request(asked)
        try:
            yield Progress(0, 1, {"run": str(run.path)})  # where the results go, before work
            request = Request(
                self.detector,
                self.weights,
                self.batch,
                pick_device(self.device),
                annotations,
                tissue_only,
                asdict(self),
                cluster,
                resume,
            )
            return (yield from measure(run, slide, spec, regions, detectors, request))
        except BaseException:  # refused, failed, cancelled or interrupted
            if not run.adversarial.exists():
                run.discard()  # before any tile: leave no trace
            raise


def results_folder(slide_path: str | Path) -> Path:
    """The default results folder: ``SLIDE_STEM.cpadv`` next to the slide."""
    p = Path(slide_path)
    return p.with_name(p.stem + ".cpadv")


def run_records(outcome: AttackOutcome) -> list[Any]:
    """Session-file records of this run's layers (their names are the layers' names):
    the adversarial slide, the perturbation (its amplification in the name) and the
    heatmaps before and after, each with its provenance."""
    from napari_cpadv.workbench.session import LayerRecord

    r = outcome.report
    key = outcome.key
    gain = amplification(outcome.perturbation())
    common = {
        "slide": r["slide"],
        "attack": r["model"],
        "seed": r["seed"],
        "run": str(outcome.folder),
    }
    out = [
        LayerRecord("adversarial", f"{key}: adversarial slide", str(outcome.delta), common),
        LayerRecord(
            "perturbation",
            f"{key}: perturbation (x{gain:.0f})",
            str(RunFolder(outcome.folder).perturbation),
            {**common, "level": r["level"], "level_box": list(outcome.level_box)},
        ),
    ]
    for name in outcome.heatmaps:
        for when in ("before", "after"):
            out.append(
                LayerRecord(
                    "heatmap",
                    f"{key}: {name} heatmap {when}",
                    str(RunFolder(outcome.folder).heatmap(name, when)),
                    {
                        **common,
                        "detector": name,
                        "weights_sha256": r["weights_sha256"].get(name),
                    },
                )
            )
    return out

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
from typing import TYPE_CHECKING, Any

from napari_cpadv.experiments.runs import RunFolder
from napari_cpadv.progress import Progress, Work

# The detectors whose output is a cell heatmap, known without importing torch (the Attack
# dock lists them as it opens); tests check it against the detector classes.
HEATMAP_DETECTORS = ("dae", "sparse")

if TYPE_CHECKING:  # torch, imported by the attack's modules, only when a run starts:
    # opening the Attack dock imported it (2.2 s quiet, 12.3 s on a busy machine)
    from napari_cpadv.experiments.measure import AttackOutcome
    from napari_cpadv.models.detector import Detector


@dataclass
class AttackModel:
    """The Attack dock's parameters (see ``attacks.base.AttackSpec``)."""

    detector: str = "dae"
    weights: str | None = None
    attack: str = "fgsm"
    norm: str = "l2"
    # seed 000's L2 = 25 over a 512 x 512 x 3 tile as a per-pixel RMS: the same change on
    # any tile side (a total's meaning grows with a smaller tile: 25 on 128 pixels is 19 dB)
    budget: float = 0.0282
    unit: str = "per_pixel"
    steps: int = 100
    constraint: str = "exact"
    batch: int = 1
    step_size: float | None = None
    restarts: int = 1
    seed: int = 0
    epochs: int = 10
    level: int = 2
    tile: int = 256  # seed 000's 512 costs four times a tile; the dock's default ends in a minute
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
        from napari_cpadv.experiments.measure import Request, measure
        from napari_cpadv.experiments.regions import clip_regions

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


# What a run costs beside its attack steps, in forward + backward passes of one tile: each
# scored detector's heatmaps before and after (a forward, about a third of a pass, over the
# tile with its margins: about half a pass) and the attack's last scoring forward; plus
# seconds of writing and opening the run.
HEATMAP_PASSES = 0.5
FIXED_SECONDS = 3.0


def pass_seconds(detector: Detector, side: int, device: Any = "cpu", repeats: int = 3) -> float:
    """Median seconds of one forward + backward pass of ``detector`` through one tile of
    ``side`` pixels on ``device`` (attacks take the tile alone, without margins): the unit
    an attack step costs, measured on this machine rather than assumed (after one pass to
    warm up)."""
    import statistics
    import time

    import torch

    x = torch.rand(1, 3, side, side, device=device, requires_grad=True)
    times = []
    for _ in range(repeats + 1):
        t0 = time.perf_counter()
        detector(x).float().sum().backward()
        times.append(time.perf_counter() - t0)
    return statistics.median(times[1:])


def passes_per_tile(model: AttackModel) -> float:
    """Forward + backward passes an attack of ``model`` spends on one tile."""
    restarts = max(1, model.restarts) if model.attack == "pgd" else 1
    steps = {"noise": 0, "universal": model.epochs}.get(model.attack, model.steps)
    return steps * restarts + 1


def estimate_seconds(model: AttackModel, tiles: int, step: float, scored: int = 1) -> float:
    """Seconds a run of ``model`` over ``tiles`` tiles should take here, from ``step``
    (``pass_seconds``): its attack steps, then each of ``scored`` detectors' heatmaps
    before and after (a detector other than the attacked one is costed as the attacked)."""
    work = tiles * (passes_per_tile(model) + 2 * HEATMAP_PASSES * scored)
    return work * step + FIXED_SECONDS


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
    from napari_cpadv.experiments.measure import amplification

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

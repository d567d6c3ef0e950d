"""``make demo``: the workbench's daily use, step by step, on real tissue once real-tissue
weights are shipped (the painted sample with ``--sample synthetic``).

1. the sample with its ground truth: the real carcinoma field (histolytics 0.3.0, every
   nucleus outlined by class; its truth is a segmentation model's output curated by its
   authors) or the painted slide;
2. the ``dae`` detector over a region and the ``sparse`` one over a tile of it (heatmap
   layers). On the real field the weights are ``dae-he`` and ``sparse-he`` and the region
   lies in the stripe both were held out from (``training.spatial`` of their records:
   level-0 columns 992-1,500), so what the heatmaps and the attack show is measured on
   tissue they never saw; ``--skip-sparse`` leaves the sparse coder out;
3. FGSM on the DAE over the region from the Attack dock (adversarial slide, amplified
   perturbation, heatmaps before and after, metrics table; ``cpadv transfer`` measures
   what the same δ does to the sparse coder);
4. side by side on one camera: the original, the adversarial slide and each with its
   heatmap, labelled, the ground truth's outline over each.

With a display the viewer stays open afterwards, with the Attack, Plots and Export docks.
With ``--headless`` (``make demo`` passes it when there is no display and runs this on a
virtual one) it writes a screenshot of each step, ``metrics.json`` and ``report.json`` to
the output folder, then exits.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Story:
    """Where the demo works: the sample, the region (level-0 ``row0, col0, row1, col1``),
    the tile of it the sparse coder runs over, the level and tile side of the attack, and
    the weights of each detector (``None``: the painted-slide ones)."""

    sample: str
    region: tuple[float, float, float, float]
    sparse_tile: tuple[float, float, float, float]
    level: int
    tile: int
    weights: dict[str, str | None]
    about: str


STORIES = {
    # the held-out stripe of dae-he and sparse-he (level-0 columns 992-1,500, every row),
    # on the level-1 grid of 128-pixel tiles: 4 tiles (the last ones clipped at the
    # field's edge), 19 neoplastic nuclei and 44 others; the sparse tile holds 16 and 9
    "real": Story(
        "hgsc_nest.tif",
        (1024.0, 1024.0, 1500.0, 1500.0),
        (1024.0, 1024.0, 1280.0, 1280.0),
        1,
        128,
        {"dae": "dae-he", "sparse": "sparse-he"},
        "real H&E (histolytics 0.3.0's carcinoma field), the stripe its weights never saw",
    ),
    # a tumour region of the painted sample, on the level-2 grid of 128-pixel tiles: 4
    # tiles, under a minute of FGSM-100 on a CPU; the sparse tile on the tumour's edge
    "synthetic": Story(
        "synthetic_he.tif",
        (1024.0, 1536.0, 2048.0, 2560.0),
        (1536.0, 2048.0, 2048.0, 2560.0),
        2,
        128,
        {"dae": None, "sparse": None},
        "the painted sample slide",
    ),
}
# seed 000's L2 = 25 over a 512 x 512 x 3 tile, as a root-mean-square per pixel
RMS = 25 / (512 * 512 * 3) ** 0.5
STEPS = 100  # seed 000's FGSM iterations


def default_story() -> str:
    """``real`` when the real-tissue weights are shipped, else ``synthetic``."""
    from napari_cpadv.models.weights import shipped_names

    real = STORIES["real"].weights.values()
    have = set(shipped_names("dae")) | set(shipped_names("sparse"))
    return "real" if all(w in have for w in real) else "synthetic"


def _shot(
    viewer: Any, out: Path | None, name: str, shots: list[str], *, canvas_only: bool = False
) -> None:
    from qtpy.QtWidgets import QApplication

    from napari_cpadv.widgets._view import clear_toasts

    clear_toasts()  # napari's notices (its PyQt5 deprecation) covered the scale bar
    QApplication.processEvents()
    if out is None:
        return
    from PIL import Image

    path = out / f"{name}.png"
    Image.fromarray(viewer.screenshot(canvas_only=canvas_only, flash=False)).save(path)
    shots.append(str(path))


def _frame(viewer: Any, layer: Any, region: tuple[float, float, float, float]) -> None:
    """Show ``region``: fit the whole slide (napari fits every cell of a grid alike), then
    zoom in on the region by the ratio of the extents."""
    from napari_cpadv.widgets._view import camera

    viewer.reset_view()
    per_px = float(layer.scale[-1])
    rows, cols = layer.data[0].shape[:2]
    r0, c0, r1, c1 = region
    cam = camera(viewer)
    cam.zoom = cam.zoom * 0.9 * min(rows / (r1 - r0), cols / (c1 - c0))
    cam.center = (0.0, (r0 + r1) / 2 * per_px, (c0 + c1) / 2 * per_px)


@dataclass
class _Demo:
    """The demo's viewer, its docks and what it has shown so far."""

    viewer: Any
    original: Any
    attack: Any
    path: Path
    out: Path | None
    story: Story
    shots: list[str] = field(default_factory=list)

    def shot(self, name: str, *, canvas_only: bool = False) -> None:
        _shot(self.viewer, self.out, name, self.shots, canvas_only=canvas_only)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m napari_cpadv.widgets.demo")
    parser.add_argument("--out", default="demo-output", help="folder for the headless pictures")
    parser.add_argument("--headless", action="store_true", help="screenshots and exit")
    parser.add_argument(
        "--sample",
        choices=sorted(STORIES),
        default=None,
        help="real: the carcinoma field with the real-tissue weights (the default when they "
        "are shipped); synthetic: the painted slide",
    )
    parser.add_argument(
        "--skip-sparse",
        action="store_true",
        help="leave out the sparse coder's heatmap (minutes on two cores)",
    )
    parser.add_argument(
        "--steps",
        type=int,
        default=STEPS,
        help=f"iterations of the FGSM attack (default: seed 000's {STEPS})",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.steps < 1:
        parser.error(f"--steps must be at least 1, not {args.steps}")

    import napari

    started = time.perf_counter()
    out = Path(args.out) if args.headless else None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    sample = args.sample or default_story()
    demo = _open(out, STORIES[sample])  # 1. the sample with its ground truth
    heatmaps = ("dae",) if args.skip_sparse else ("dae", "sparse")
    _detect(demo, heatmaps)  # 2. the detectors
    outcome = _attack(demo, args.steps)  # 3. FGSM on the DAE from the Attack dock
    _side_by_side(demo)  # 4. four labelled panels, one camera
    if not args.headless:
        napari.run()
        return 0
    assert out is not None
    (out / "metrics.json").write_text(json.dumps({"metrics": outcome.metrics}, indent=2))
    report = {
        "sample": sample,
        **_story_record(demo.story),
        "slide": str(demo.path),
        "attack": {"name": "fgsm", "steps": args.steps, "l2_rms": RMS, "unit": "per_pixel"},
        "heatmaps": list(heatmaps),
        "results": str(outcome.folder),
        "metrics": outcome.metrics,
        "screenshots": demo.shots,
        "seconds": round(time.perf_counter() - started, 1),
    }
    (out / "report.json").write_text(json.dumps(report, indent=2))
    sys.stdout.write(json.dumps(report, indent=2) + "\n")
    demo.viewer.close()
    return 0


def _story_record(story: Story) -> dict[str, Any]:
    return {
        "about": story.about,
        "weights": {d: story.weights[d] or d for d in ("dae", "sparse")},
        "region_level0_rows_cols": list(story.region),
        "level": story.level,
        "tile": story.tile,
    }


def _open(out: Path | None, story: Story) -> _Demo:
    """The story's sample in a viewer with the scale bar and the Attack, Plots, Export docks."""
    import napari
    from qtpy.QtWidgets import QApplication

    from napari_cpadv._reader import scale_bar
    from napari_cpadv.slide.synthetic import SAMPLE_DATA
    from napari_cpadv.widgets._lockdown import dock_of
    from napari_cpadv.widgets.attack import AttackWidget
    from napari_cpadv.widgets.export import ExportWidget
    from napari_cpadv.widgets.plots import PlotsWidget

    path = SAMPLE_DATA / story.sample
    # shown even headless (on the virtual display): a hidden window sizes napari 0.9's grid
    # cells wrongly, and the screenshots would not be what a user sees
    viewer = napari.Viewer(title="napari-cpadv demo", show=True)
    viewer.window.resize(1600, 1000)
    original = viewer.open(path, plugin="napari-cpadv")[0]
    scale_bar(viewer).visible = True
    attack = AttackWidget(viewer)
    plots = PlotsWidget(viewer)
    viewer.window.add_dock_widget(ExportWidget(viewer), name="Export", area="right")
    viewer.window.add_dock_widget(plots, name="Plots", area="right", tabify=True)
    viewer.window.add_dock_widget(attack, name="Attack", area="right", tabify=True)
    viewer.reset_view()
    QApplication.processEvents()  # the docks are shown, and tab themselves (widgets._dock)
    dock_of(attack).raise_()  # the dock the story is about
    _set_up(attack, story)
    demo = _Demo(viewer, original, attack, path, out, story)
    demo.shot("1-slide")
    return demo


def _set_up(attack: Any, story: Story) -> None:
    """The Attack dock set for the story from the start (what a user would pick for this
    slide: the weights that learnt from its kind of tissue, the level at their µm per
    pixel): FGSM at seed 000's budget, once the dock has found its attacks."""
    from qtpy.QtWidgets import QApplication

    while not attack.form.attacks_found:  # torch, imported off the GUI thread
        QApplication.processEvents()
        time.sleep(0.01)
    attack._detector.setCurrentText("dae")
    attack._weights.setText(story.weights["dae"] or "")
    attack._attack.setCurrentText("fgsm")
    attack._norm.setCurrentText("l2")
    attack._unit.setCurrentText("per_pixel")
    attack._budget.setValue(RMS)
    attack._level.setCurrentIndex(story.level)
    attack._tile.setValue(story.tile)
    QApplication.processEvents()


def _detect(demo: _Demo, detectors: tuple[str, ...]) -> None:
    """The region drawn, the DAE's heatmap over it and the sparse coder's over one tile
    (each of ``detectors``)."""
    from napari_cpadv._heatmap_layers import heatmap_layer_data
    from napari_cpadv.inference.detect import DetectModel
    from napari_cpadv.progress import drive
    from napari_cpadv.slide import open_slide
    from napari_cpadv.widgets._view import REGION_LAYER

    mpp, story = float(demo.original.scale[-1]), demo.story
    r0, c0, r1, c1 = story.region
    demo.viewer.add_shapes(
        [[[r0 * mpp, c0 * mpp], [r0 * mpp, c1 * mpp], [r1 * mpp, c1 * mpp], [r1 * mpp, c0 * mpp]]],
        shape_type="rectangle",
        name=REGION_LAYER,
        units=demo.original.units,
        edge_color="cyan",
        face_color="transparent",
        edge_width=4 * mpp,
    )
    slide = open_slide(demo.path)
    for name in detectors:
        where = {"dae": story.region, "sparse": story.sparse_tile}[name]
        model = DetectModel(
            detector=name, weights=story.weights[name], scope="rectangle", level=story.level
        )
        hm = drive(model.work(slide, box=where))
        data, kwargs, _ = heatmap_layer_data(
            hm.probabilities(),
            cell_level0=hm.cell * hm.downsample,
            origin=hm.origin,
            mpp=slide.mpp,
            name=f"{name} heatmap",
        )
        demo.viewer.add_image(data, **kwargs)
    _frame(demo.viewer, demo.original, story.region)
    demo.shot("2-detect")


def _attack(demo: _Demo, steps: int) -> Any:
    """FGSM (seed 000's 100 steps unless told) on the DAE at seed 000's budget, set in the
    Attack dock and run by it."""
    from qtpy.QtWidgets import QApplication

    from napari_cpadv.progress import drive
    from napari_cpadv.widgets._view import ground_truth

    viewer, attack, story = demo.viewer, demo.attack, demo.story
    for la in [la for la in viewer.layers if la.name in ("dae heatmap", "sparse heatmap")]:
        la.visible = False
    attack._steps.setValue(steps)
    attack._region.setCurrentText("drawn region")
    attack._sync()
    results = (demo.out / "results") if demo.out is not None else None
    viewer.layers.selection.active = demo.original
    work = attack.model.work(
        demo.path,
        box=story.region,
        results=results or demo.path.with_name(demo.path.stem + ".cpadv"),
        annotations=ground_truth(viewer),
        detectors={"dae": attack.model.load()},
    )
    outcome = drive(work)
    attack._on_done(outcome, demo.original)
    while attack.adding:  # the run's layers go in one per turn of the event loop
        QApplication.processEvents()
    demo.shot("3-attack")
    return outcome


def _side_by_side(demo: _Demo) -> None:
    from qtpy.QtWidgets import QApplication

    from napari_cpadv.widgets._view import REGION_LAYER

    for name in (REGION_LAYER, "dae heatmap", "sparse heatmap"):
        if name in demo.viewer.layers:
            demo.viewer.layers.remove(name)
    demo.attack._grid.setChecked(True)
    while demo.attack.compare.busy:  # the panels go in one layer per turn of the event loop
        QApplication.processEvents()
    _frame(demo.viewer, demo.original, demo.story.region)
    # the grid's cells are drawn right only in a canvas grab (napari 0.9 with the docks)
    demo.shot("4-side-by-side", canvas_only=True)


if __name__ == "__main__":
    raise SystemExit(main())

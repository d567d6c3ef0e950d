"""``make demo``: the workbench's daily use on the sample slide, step by step.

1. the sample slide with its ground truth;
2. the shipped ``dae`` detector over a tumour region and the ``sparse`` one over a tile of
   it (heatmap layers; the sparse coder runs LCA to convergence, some 15 s a 128-pixel
   tile on one core, so the demo keeps it to one tile);
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
from pathlib import Path
from typing import Any

# A tumour region of the sample slide, level-0 (row0, col0, row1, col1), on the level-2
# grid of 128-pixel tiles: 4 tiles, under a minute of FGSM-100 on a CPU.
REGION = (1024.0, 1536.0, 2048.0, 2560.0)
SPARSE_TILE = (1536.0, 2048.0, 2048.0, 2560.0)  # one of the four, on the tumour's edge
LEVEL, TILE = 2, 128
# seed 000's L2 = 25 over a 512 x 512 x 3 tile, as a root-mean-square per pixel
RMS = 25 / (512 * 512 * 3) ** 0.5


def _shot(
    viewer: Any, out: Path | None, name: str, shots: list[str], *, canvas_only: bool = False
) -> None:
    from qtpy.QtWidgets import QApplication

    QApplication.processEvents()
    if out is None:
        return
    from PIL import Image

    path = out / f"{name}.png"
    Image.fromarray(viewer.screenshot(canvas_only=canvas_only, flash=False)).save(path)
    shots.append(str(path))


def _frame(viewer: Any, layer: Any) -> None:
    """Show the region: fit the whole slide (napari fits every cell of a grid alike), then
    zoom in on the region by the ratio of the extents."""
    from napari_cpadv.widgets._view import camera

    viewer.reset_view()
    per_px = float(layer.scale[-1])
    rows, cols = layer.data[0].shape[:2]
    r0, c0, r1, c1 = REGION
    cam = camera(viewer)
    cam.zoom = cam.zoom * 0.9 * min(rows / (r1 - r0), cols / (c1 - c0))
    cam.center = (0.0, (r0 + r1) / 2 * per_px, (c0 + c1) / 2 * per_px)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m napari_cpadv.widgets.demo")
    parser.add_argument("--out", default="demo-output", help="folder for the headless pictures")
    parser.add_argument("--headless", action="store_true", help="screenshots and exit")
    args = parser.parse_args(argv)

    import napari
    from qtpy.QtWidgets import QApplication

    from napari_cpadv._heatmap_layers import heatmap_layer_data
    from napari_cpadv._reader import scale_bar
    from napari_cpadv.inference.detect import DetectModel
    from napari_cpadv.progress import drive
    from napari_cpadv.slide import open_slide
    from napari_cpadv.slide.synthetic import sample_slide_path
    from napari_cpadv.widgets._view import REGION_LAYER, ground_truth
    from napari_cpadv.widgets.attack import AttackWidget
    from napari_cpadv.widgets.export import ExportWidget
    from napari_cpadv.widgets.plots import PlotsWidget

    started = time.perf_counter()
    out = Path(args.out) if args.headless else None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    shots: list[str] = []
    path = sample_slide_path()
    # shown even headless (on the virtual display): a hidden window sizes napari 0.9's grid
    # cells wrongly, and the screenshots would not be what a user sees
    viewer = napari.Viewer(title="napari-cpadv demo", show=True)
    viewer.window.resize(1600, 1000)
    layers = viewer.open(path, plugin="napari-cpadv")
    original = layers[0]
    bar = scale_bar(viewer)
    bar.visible = True
    attack = AttackWidget(viewer)
    plots = PlotsWidget(viewer)
    viewer.window.add_dock_widget(ExportWidget(viewer, attack), name="Export", area="right")
    viewer.window.add_dock_widget(plots, name="Plots", area="right", tabify=True)
    viewer.window.add_dock_widget(attack, name="Attack", area="right", tabify=True)
    viewer.reset_view()
    _shot(viewer, out, "1-slide", shots)

    # 2. the detectors over a tumour region
    mpp = float(original.scale[-1])
    r0, c0, r1, c1 = REGION
    viewer.add_shapes(
        [[[r0 * mpp, c0 * mpp], [r0 * mpp, c1 * mpp], [r1 * mpp, c1 * mpp], [r1 * mpp, c0 * mpp]]],
        shape_type="rectangle",
        name=REGION_LAYER,
        units=original.units,
        edge_color="cyan",
        face_color="transparent",
        edge_width=4 * mpp,
    )
    slide = open_slide(path)
    detected = {}
    for name, where in (("dae", REGION), ("sparse", SPARSE_TILE)):
        model = DetectModel(detector=name, scope="rectangle", level=LEVEL)
        hm = drive(model.work(slide, box=where))
        data, kwargs, _ = heatmap_layer_data(
            hm.probabilities(),
            cell_level0=hm.cell * hm.downsample,
            origin=hm.origin,
            mpp=slide.mpp,
            name=f"{name} heatmap",
        )
        viewer.add_image(data, **kwargs)
        detected[name] = hm
    _frame(viewer, original)
    _shot(viewer, out, "2-detect", shots)

    # 3. FGSM on the DAE from the Attack dock
    for la in [la for la in viewer.layers if la.name in ("dae heatmap", "sparse heatmap")]:
        la.visible = False
    attack._detector.setCurrentText("dae")
    attack._attack.setCurrentText("fgsm")
    attack._norm.setCurrentText("l2")
    attack._unit.setCurrentText("per_pixel")
    attack._budget.setValue(RMS)
    attack._steps.setValue(100)
    attack._region.setCurrentText("drawn region")
    attack._level.setCurrentIndex(LEVEL)
    attack._tile.setValue(TILE)
    attack._sync()
    results = (out / "results") if out is not None else None
    viewer.layers.selection.active = original
    work = attack.model.work(
        path,
        box=REGION,
        results=results or Path(path).with_name(Path(path).stem + ".cpadv"),
        annotations=ground_truth(viewer),
        detectors={"dae": attack.model.load()},
    )
    outcome = drive(work)
    attack._on_done(outcome, original)
    while attack.adding:  # the run's layers go in one per turn of the event loop
        QApplication.processEvents()
    _shot(viewer, out, "3-attack", shots)

    # 4. side by side, one camera: four labelled panels with the ground truth over each
    for name in (REGION_LAYER, "dae heatmap", "sparse heatmap"):
        if name in viewer.layers:
            viewer.layers.remove(name)
    attack._grid.setChecked(True)
    _frame(viewer, original)
    # the grid's cells are drawn right only in a canvas grab (napari 0.9 with the docks)
    _shot(viewer, out, "4-side-by-side", shots, canvas_only=True)

    if not args.headless:
        napari.run()
        return 0
    assert out is not None
    (out / "metrics.json").write_text(json.dumps({"metrics": outcome.metrics}, indent=2))
    report = {
        "slide": str(path),
        "region_level0_rows_cols": list(REGION),
        "level": LEVEL,
        "tile": TILE,
        "attack": {"name": "fgsm", "steps": 100, "l2_rms": RMS, "unit": "per_pixel"},
        "results": str(outcome.folder),
        "metrics": outcome.metrics,
        "screenshots": shots,
        "seconds": round(time.perf_counter() - started, 1),
    }
    (out / "report.json").write_text(json.dumps(report, indent=2))
    sys.stdout.write(json.dumps(report, indent=2) + "\n")
    viewer.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

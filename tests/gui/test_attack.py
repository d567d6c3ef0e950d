"""The Attack dock on a real viewer: layers in place, flip, blink, grid, Cancel, refusals,
saliency, and a session file that restores the layers."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
import torch

from napari_cpadv.annotations import read_annotations
from napari_cpadv.models import weights
from napari_cpadv.models.detector import make
from napari_cpadv.slide.delta import open_delta
from napari_cpadv.widgets._view import REGION_LAYER, ground_truth
from napari_cpadv.widgets.attack import AttackWidget
from napari_cpadv.widgets.export import ExportWidget
from napari_cpadv.widgets.plots import PlotsWidget

from ..conftest import SAMPLE

pytestmark = pytest.mark.gui


@pytest.fixture(scope="module")
def dae_weights(tmp_path_factory):
    torch.manual_seed(0)
    return str(weights.save(make("dae"), tmp_path_factory.mktemp("w") / "dae"))


def _widget(make_napari_viewer, dae_weights, tmp_path, region="drawn region"):
    viewer = make_napari_viewer()
    slide, _truth = viewer.open(SAMPLE, plugin="napari-cpadv")
    w = AttackWidget(viewer)
    w._detector.setCurrentText("dae")
    w._weights.setText(dae_weights)
    w._attack.setCurrentText("fgsm")
    w._unit.setCurrentText("total")
    w._budget.setValue(2.0)
    w._steps.setValue(2)
    w._level.setCurrentIndex(1)
    w._tile.setValue(64)
    w._region.setCurrentText(region)
    w._results.setText(str(tmp_path / "results"))
    return viewer, slide, w


def _rectangle(viewer, slide, rows, cols):
    mpp = slide.scale[-1]
    (r0, r1), (c0, c1) = rows, cols
    box = np.array([[r0, c0], [r0, c1], [r1, c1], [r1, c0]]) * mpp
    viewer.add_shapes([box], shape_type="rectangle", name=REGION_LAYER)
    viewer.layers.selection.active = slide


def _luminance(rgb) -> float:
    """WCAG 2's relative luminance of an sRGB colour in [0, 1]."""
    lin = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in rgb]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def _assert_readable(label, centre, canvas, zoom) -> None:
    """A panel's label: text at least 4.5:1 against its backdrop laid over black (napari's
    canvas) and over white (glass), and the backdrop inside its cell of the 2 x 2 grid."""
    text = np.asarray(label.text.color.constant[:3], float)
    face = np.asarray(label.face_color[0], float)
    for under in (np.zeros(3), np.ones(3)):
        back = face[3] * face[:3] + (1 - face[3]) * under
        lo, hi = sorted((_luminance(back), _luminance(text)))
        assert (hi + 0.05) / (lo + 0.05) >= 4.5, (text, face, under)
    half = np.asarray(canvas, float)[-2:] / 2 / (2 * zoom)  # a cell shows half the canvas
    (r0, c0), (r1, c1) = label.data[0].min(axis=0), label.data[0].max(axis=0)
    assert (np.asarray(centre) - half <= (r0, c0)).all() and ((r1, c1) <= centre + half).all()


def test_attack_adds_aligned_layers_and_the_comparison_works(
    make_napari_viewer, qtbot, dae_weights, tmp_path
):
    viewer, slide, w = _widget(make_napari_viewer, dae_weights, tmp_path)
    plots = PlotsWidget(viewer)
    viewer.window.add_dock_widget(w, name="Attack")
    viewer.window.add_dock_widget(plots, name="Plots")
    _rectangle(viewer, slide, (1300, 1556), (1800, 2056))
    w._on_run()
    qtbot.waitUntil(lambda: w._run.isEnabled(), timeout=120_000)
    assert w.outcome is not None, w._status.text()
    # the Plots dock drew the PR curves of this run
    assert plots._kind.currentText().startswith("PR curves")
    legend = plots.figure.axes[0].get_legend().get_texts()
    assert [t.get_text().split(" (")[0] for t in legend] == ["dae before", "dae after"]
    assert plots.save(tmp_path / "pr.svg").stat().st_size > 0
    names = [la.name for la in viewer.layers]
    adv = viewer.layers["dae fgsm: adversarial slide"]
    assert names.index(adv.name) == names.index(slide.name) + 1
    assert tuple(adv.scale) == tuple(slide.scale) and len(adv.data) == len(slide.data)
    pert = next(la for la in viewer.layers if la.name.startswith("dae fgsm: perturbation"))
    ds = 2.0  # level 1 of the sample
    r0, c0 = w.outcome.level_box[:2]
    mpp = slide.scale[-1]
    assert tuple(pert.scale) == pytest.approx((ds * mpp, ds * mpp))
    assert tuple(pert.translate) == pytest.approx(((r0 * ds + 0.5) * mpp, (c0 * ds + 0.5) * mpp))
    lo, hi = pert.contrast_limits
    assert lo == -hi  # centred on 0
    assert {"dae fgsm: dae heatmap before", "dae fgsm: dae heatmap after"} <= set(names)
    # the metrics table: one column per detector, AUC-PR from the open ground truth
    assert w._table.columnCount() == 1 and w._table.item(0, 0).text() == "True"
    assert w.copy_metrics().startswith("detector,attacked")
    # flip in place: the camera stays where it was
    cam = viewer.scene.camera if hasattr(viewer, "scene") else viewer.camera
    centre, zoom = tuple(cam.center), cam.zoom
    shown = w.compare.showing()
    bound = [f for key, f in viewer.keymap.items() if str(key).upper() == "F"]
    assert len(bound) == 1  # the F binding the dock registers with napari
    before, after = (viewer.layers[f"dae fgsm: dae heatmap {s}"] for s in ("before", "after"))
    assert after.visible and not before.visible
    assert after.colorbar.visible and before.colorbar.visible  # the probability scale
    bound[0](viewer)
    assert w.compare.showing() != shown
    assert tuple(cam.center) == centre and cam.zoom == zoom
    assert before.visible and not after.visible  # the heatmaps flip with their slides
    bound[0](viewer)
    assert after.visible and not before.visible
    bound[0](viewer)
    w.compare.blink(True, 20)
    seen = set()
    for _ in range(40):
        qtbot.wait(30)
        seen.add(w.compare.showing())
    w.compare.blink(False)
    assert seen == {"original", "adversarial"}
    order = [la.name for la in viewer.layers]
    w._grid.setChecked(True)  # the panels go in one layer per turn, then the grid
    qtbot.waitUntil(lambda: w.compare.grid_enabled and not w.compare.busy, timeout=60_000)
    assert adv.visible
    # four labelled panels, the ground truth's outline over each image
    assert w.compare.panels == [
        "original",
        "adversarial",
        "dae heatmap before",
        "dae heatmap after",
    ]
    grid = viewer.canvas.grid
    assert grid.actual_shape(list(viewer.layers)) == (2, 2)
    layers = list(viewer.layers)
    for p, name in enumerate(w.compare.panels):
        cell = layers[4 * p : 4 * p + 4]
        assert cell[0].visible and cell[0].rgb  # a slide at the bottom of each cell
        assert cell[2].name.startswith("ground truth") and cell[2].visible
        assert cell[3].text.values[0] == name
        _assert_readable(cell[3], cam.center[-2:], viewer.canvas.size, cam.zoom)
    assert layers[9].name == "dae fgsm: dae heatmap before" and layers[8].data is slide.data
    # each heatmap's colour bar away from its panel's label (top left) and the scale bar
    # (the canvas's bottom right): it ran over "dae heatmap before"
    heat = [layers[9], layers[13]]
    assert [str(h.colorbar.position) for h in heat] == ["bottom_left"] * 2
    assert all(h.colorbar.visible for h in heat)
    cam.zoom = zoom * 2  # one camera for every cell of the grid
    for p, _name in enumerate(w.compare.panels):  # the labels follow the zoom
        _assert_readable(layers[4 * p + 3], cam.center[-2:], viewer.canvas.size, cam.zoom)
    label = layers[3]
    width_px = np.ptp(label.data[0][:, 1]) * cam.zoom  # its backdrop, in screen pixels
    cam.zoom = zoom / 2
    assert np.ptp(label.data[0][:, 1]) * cam.zoom == pytest.approx(width_px)
    _assert_readable(label, cam.center[-2:], viewer.canvas.size, cam.zoom)
    cam.zoom = zoom * 2
    assert viewer.canvas.grid.enabled and len({id(cam)}) == 1
    w._grid.setChecked(False)
    assert not w.compare.grid_enabled
    qtbot.waitUntil(lambda: not w.compare.busy, timeout=60_000)
    assert [la.name for la in viewer.layers] == order  # the panels' layers are gone
    assert [str(h.colorbar.position) for h in heat] == ["top_right"] * 2  # as they were
    # saliency before and after
    w._saliency.click()  # computed off the GUI thread
    qtbot.waitUntil(lambda: sum("saliency" in la.name for la in viewer.layers) == 2, timeout=60_000)
    sal = [la for la in viewer.layers if "saliency" in la.name]
    assert len(sal) == 2 and sal[0].data.shape == sal[1].data.shape
    # exports read back equal
    export = ExportWidget(viewer)
    viewer.window.add_dock_widget(export, name="Export")
    truth = export.export_truth(tmp_path / "truth.geojson")
    assert len(read_annotations(truth)) == len(ground_truth(viewer))
    export._level.setCurrentIndex(2)
    truth_mask = tifffile.imread(export.export_truth_mask(tmp_path / "truth.tif"), level=0)
    assert truth_mask.shape == tuple(slide.data[2].shape[:2]) and truth_mask.any()
    # the button's way: gathered here, written in a worker, the same file
    assert export.export(export._job_truth_mask, tmp_path / "truth2.tif") is not None
    qtbot.waitUntil(lambda: "wrote" in export._status.text(), timeout=60_000)
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "truth2.tif", level=0), truth_mask)
    assert export._progress.value() == export._progress.maximum()
    # it offers the heatmap the user looks at: the top one shown
    shown = [la.name for la in viewer.layers if la.metadata.get("cpadv_heatmap") and la.visible]
    assert export._heatmap.currentText() == shown[-1], shown
    export._heatmap.setCurrentText("dae fgsm: dae heatmap before")
    export._threshold.setValue(0.5)
    values = viewer.layers["dae fgsm: dae heatmap before"].data
    anns = read_annotations(export.export_heatmap(tmp_path / "heat.geojson"))
    assert bool(anns) == bool((values >= 0.5).any())
    mask = tifffile.imread(export.export_mask(tmp_path / "mask.tif"), level=0)
    np.testing.assert_array_equal(mask, (np.nan_to_num(values) >= 0.5).astype(np.uint8))
    region = tifffile.imread(export.export_region(tmp_path / "adv.tif"))
    b = w.outcome.level_box
    np.testing.assert_array_equal(
        region, open_delta(w.outcome.delta).read_region(1, b[0], b[1], b[2] - b[0], b[3] - b[1])
    )
    assert export.export_metrics(tmp_path / "m.csv").read_text().startswith("detector,")
    # the session file restores the same layers
    path = export.export_session(tmp_path / "s.json")
    assert path.name == "s.cpadv.json"
    other = make_napari_viewer()
    other_dock = AttackWidget(other)
    restored = other.open(str(path), plugin="napari-cpadv")
    names = [la.name for la in restored]
    # with the ground truth it was measured against, and the run's metrics table
    assert names == [w.records[0].name, "ground truth", *(rec.name for rec in w.records[1:])]
    assert other_dock._table.columnCount() == 1 and other_dock._table.item(0, 0).text() == "True"
    # the Plots dock takes a `cpadv attack` report too (its AUC-PR of clean and attacked)
    report = {
        "delta": "x",
        "aucpr": {
            "dae": {
                "clean": w.outcome.report["pr_curves"]["dae"]["before"],
                "attacked": w.outcome.report["pr_curves"]["dae"]["after"],
            }
        },
    }
    assert plots.set_report(report).startswith("PR curves")


def test_refusals_change_nothing(make_napari_viewer, qtbot, dae_weights, tmp_path):
    viewer, slide, w = _widget(make_napari_viewer, dae_weights, tmp_path)
    n = len(viewer.layers)
    w._budget.setValue(-1.0)
    w._on_run()
    assert ">= 0" in w._status.text() and len(viewer.layers) == n
    w._budget.setValue(2.0)
    w._on_run()  # no rectangle drawn yet
    assert "rectangle" in w._status.text() and len(viewer.layers) == n
    _rectangle(viewer, slide, (90_000, 90_010), (90_000, 90_010))  # beyond the slide
    n = len(viewer.layers)
    w._on_run()
    qtbot.waitUntil(lambda: w._run.isEnabled(), timeout=60_000)
    assert "outside the slide" in w._status.text() and len(viewer.layers) == n
    assert not (tmp_path / "results").exists() or not any((tmp_path / "results").iterdir())
    w._weights.setText(str(tmp_path / "missing.safetensors"))  # no detector to attack
    w._on_run()  # the weights load in the worker: the refusal comes back as the message
    qtbot.waitUntil(lambda: "missing" in w._status.text(), timeout=60_000)
    qtbot.waitUntil(w._run.isEnabled, timeout=60_000)
    assert "weights" in w._status.text() and len(viewer.layers) == n
    assert not (tmp_path / "results").exists() or not any((tmp_path / "results").iterdir())
    empty = make_napari_viewer()
    w2 = AttackWidget(empty)
    w2._on_run()
    assert w2._status.text() == "open a slide first" and not len(empty.layers)


def test_cancel_stops_within_a_step(make_napari_viewer, qtbot, dae_weights, tmp_path):
    viewer, slide, w = _widget(make_napari_viewer, dae_weights, tmp_path)
    w._steps.setValue(10_000)
    _rectangle(viewer, slide, (1300, 1556), (1800, 2056))
    n = len(viewer.layers)
    w._on_run()
    qtbot.waitUntil(lambda: w._progress.value() >= 2, timeout=60_000)
    w._cancel.click()
    qtbot.waitUntil(lambda: w._run.isEnabled(), timeout=60_000)
    assert len(viewer.layers) == n and w._status.text().startswith("cancelled")


def test_selected_tiles_attack_only_the_selected_shapes(
    make_napari_viewer, qtbot, dae_weights, tmp_path
):
    viewer, slide, w = _widget(make_napari_viewer, dae_weights, tmp_path, "selected shapes")
    w._attack.setCurrentText("noise")
    mpp = slide.scale[-1]
    shapes = [
        np.array([[r0, c0], [r0, c0 + 128], [r0 + 128, c0 + 128], [r0 + 128, c0]]) * mpp
        for r0, c0 in ((1280, 1792), (0, 0), (512, 2560))
    ]
    layer = viewer.add_shapes(shapes, shape_type="rectangle", name=REGION_LAYER)
    layer.selected_data = {0, 2}
    viewer.layers.selection.active = slide
    w._on_run()
    qtbot.waitUntil(lambda: w._run.isEnabled(), timeout=120_000)
    assert w.outcome is not None, w._status.text()
    # level 1 is 2x: the 64-pixel level-1 tiles under shapes 0 and 2, none under shape 1
    positions = w.outcome.report["positions"]
    assert [640, 896] in positions and [256, 1280] in positions
    assert all(c >= 800 for _, c in positions)  # shape 1 (at column 0) is not selected

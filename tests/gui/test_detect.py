"""The Detect widget: an aligned heatmap layer, its AUC-PR against ground truth, Cancel."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_cpadv.models import weights
from napari_cpadv.models.detector import make
from napari_cpadv.widgets.detect import REGION_LAYER, DetectWidget

from ..conftest import SAMPLE
from ._gaps import FLOOR_RATIO, longest_gap, napari_floor

pytestmark = pytest.mark.gui


@pytest.fixture(scope="module")
def dae_weights(tmp_path_factory):
    torch.manual_seed(0)
    return str(weights.save(make("dae"), tmp_path_factory.mktemp("w") / "dae"))


def _widget(make_napari_viewer, dae_weights, scope, level, show=False):
    viewer = make_napari_viewer(show=show)
    slide, _truth = viewer.open(SAMPLE, plugin="napari-cpadv")
    w = DetectWidget(viewer)
    if show:
        viewer.window.add_dock_widget(w, name="Detect")
    w._detector.setCurrentText("dae")
    w._weights.setText(dae_weights)
    w._scope.setCurrentText(scope)
    w._level.setCurrentIndex(level)
    return viewer, slide, w


def _heat(viewer):
    (heat,) = [la for la in viewer.layers if la.metadata.get("cpadv_heatmap")]
    return heat


def test_rectangle_gives_an_aligned_heatmap_and_its_aucpr(make_napari_viewer, qtbot, dae_weights):
    viewer, slide, w = _widget(make_napari_viewer, dae_weights, "rectangle", 1)
    mpp = slide.scale[-1]
    # a rectangle over part of the tumour, in µm: level-0 rows 800-1600, cols 1000-2400
    box = np.array([[800, 1000], [800, 2400], [1600, 2400], [1600, 1000]]) * mpp
    viewer.add_shapes([box], shape_type="rectangle", name=REGION_LAYER)
    viewer.layers.selection.active = slide
    w._on_run()
    qtbot.waitUntil(lambda: w._run.isEnabled(), timeout=120_000)
    heat = _heat(viewer)
    assert heat.name.startswith("dae heatmap") and heat.colormap.name == "cpadv tumour probability"
    assert tuple(heat.contrast_limits) == (0.0, 1.0) and 0 < heat.opacity < 1
    # cell (i, j) covers level-0 pixels [8·(origin+i), +8): level 1, 4 pixels a cell
    s = 8.0
    assert tuple(heat.scale) == pytest.approx((s * mpp, s * mpp))
    origin = np.asarray(heat.metadata["origin"])
    assert tuple(origin) == (800 // 8, 1000 // 8)
    assert tuple(heat.translate) == pytest.approx(tuple((origin * s + (s - 1) / 2) * mpp))
    assert heat.data.shape == (100, 175)
    # the first cell's centre, in world µm, is the centre of its 8 x 8 level-0 pixels
    centre = heat.data_to_world((0, 0))
    assert tuple(centre) == pytest.approx(tuple((np.array([800, 1000]) + 3.5) * mpp))
    assert w.last_score is not None and 0 < w.last_score["null_aucpr"] < 1
    assert "AUC-PR" in w._status.text()
    assert viewer.layers[-1].name.startswith("ground truth")  # the outline stays on top
    assert heat.colorbar.visible and heat.colorbar.box  # its probability scale, 0 to 1

    w._on_run()  # a rerun replaces its heatmap where it stood: no "[1]" copy
    qtbot.waitUntil(lambda: w._run.isEnabled(), timeout=120_000)
    names = [la.name for la in viewer.layers]
    assert _heat(viewer) is not heat and names.count(heat.name) == 1
    assert not any(n.endswith("[1]") for n in names) and names[-1].startswith("ground truth")


def test_cancel_stops_the_run(make_napari_viewer, qtbot, dae_weights):
    viewer, _slide, w = _widget(make_napari_viewer, dae_weights, "tissue", 0)
    n = len(viewer.layers)
    w._on_run()
    qtbot.waitUntil(lambda: w._progress.value() >= 1, timeout=60_000)
    w._cancel.click()
    qtbot.waitUntil(lambda: w._run.isEnabled(), timeout=60_000)
    assert len(viewer.layers) == n and w._status.text() == "cancelled"
    assert w._progress.value() < w._progress.maximum()


def test_view_scope_runs_on_what_is_visible(make_napari_viewer, qtbot, dae_weights):
    viewer, slide, w = _widget(make_napari_viewer, dae_weights, "view", 2)
    camera = getattr(viewer, "scene", viewer).camera
    camera.center = (0, 1500 * slide.scale[-1], 2000 * slide.scale[-1])
    camera.zoom = camera.zoom * 4
    w._on_run()
    qtbot.waitUntil(lambda: w._run.isEnabled(), timeout=120_000)
    heat = _heat(viewer)
    assert heat.metadata["cpadv_heatmap"] and 0 < heat.data.size < (750 // 4) * (1000 // 4)


def test_pan_scope_adds_an_on_demand_layer_computed_as_shown(
    make_napari_viewer, qtbot, dae_weights, tmp_path
):
    viewer, slide, w = _widget(make_napari_viewer, dae_weights, "pan", 1, show=True)
    w.cache = str(tmp_path)

    def add_and_look() -> None:
        w._on_run()
        viewer.reset_view()

    # napari asks for what it shows; those blocks are computed behind the GUI and cached
    floor = napari_floor(viewer, qtbot, slide)
    gap = longest_gap(add_and_look, lambda: any(tmp_path.rglob("c/*/*")), qtbot)
    print(f"longest GUI-thread gap while a pan heatmap fills in: {gap:.3f} s (napari {floor:.3f})")
    assert gap <= FLOOR_RATIO * floor
    heat = _heat(viewer)
    assert heat.multiscale and heat.name.endswith("on demand)")
    assert tuple(heat.scale) == pytest.approx((8 * slide.scale[-1], 8 * slide.scale[-1]))
    lazy = w.on_demand[0][1]
    fine = np.asarray(heat.data[0][:64, :64])  # asked for: NaN now if not yet computed
    qtbot.waitUntil(lambda: np.isfinite(np.asarray(heat.data[0][:64, :64])).all(), timeout=120_000)
    fine = np.asarray(heat.data[0][:64, :64])
    assert ((fine >= 0) & (fine <= 1)).all()
    qtbot.waitUntil(lambda: heat.metadata.get("cpadv_ready", 0) >= 1, timeout=10_000)
    viewer.layers.remove(heat)  # the background work stops with its layer
    assert not w.on_demand and lazy._thread is None


def test_weights_of_another_detector_are_reported_not_run(make_napari_viewer, qtbot, dae_weights):
    """The weights load in the worker (off the GUI thread); their refusal still comes back
    as the dock's message, with Run enabled again and no layer added."""
    viewer, _slide, w = _widget(make_napari_viewer, dae_weights, "tissue", 2)
    w._detector.setCurrentText("sparse")
    n = len(viewer.layers)
    w._on_run()
    qtbot.waitUntil(lambda: "for the 'dae' detector" in w._status.text(), timeout=60_000)
    qtbot.waitUntil(w._run.isEnabled, timeout=60_000)
    assert len(viewer.layers) == n


def test_an_adversarial_slide_opens_like_its_original(make_napari_viewer, tmp_path):
    from napari_cpadv.slide import open_slide
    from napari_cpadv.slide.delta import create_delta
    from napari_cpadv.slide.perturb import apply

    delta = create_delta(SAMPLE, tmp_path / "adv.delta.zarr")
    region = open_slide(SAMPLE).read_region(1, 0, 0, 64, 64)
    apply(delta, 1, 0, 0, 255 - region)
    viewer = make_napari_viewer()
    (adv,) = viewer.open(tmp_path / "adv.delta.zarr", plugin="napari-cpadv")
    original, _ = viewer.open(SAMPLE, plugin="napari-cpadv")
    assert adv.multiscale and adv.rgb and len(adv.data) == len(original.data)
    assert tuple(adv.scale) == tuple(original.scale)
    np.testing.assert_array_equal(np.asarray(adv.data[1][:64, :64]), 255 - region)


def test_the_defaults_run_on_the_sample_and_say_what_they_made(make_napari_viewer, qtbot):
    """Issue 16, items 1 and 6: Run with every default (shipped dae, the view, level 2)."""
    viewer = make_napari_viewer(show=True)
    slide, _truth = viewer.open(SAMPLE, plugin="napari-cpadv")
    w = DetectWidget(viewer)
    viewer.window.add_dock_widget(w, name="Detect")
    viewer.reset_view()
    assert w._levels.level() == 2 and w.resolution_warning is None
    assert [w._level.itemText(k).split(":")[0] for k in range(w._level.count())] == ["0", "1", "2"]
    floor = napari_floor(viewer, qtbot, slide)
    gap = longest_gap(w._run.click, w._run.isEnabled, qtbot)
    print(f"longest GUI-thread gap during a default Detect run: {gap:.3f} s (napari {floor:.3f})")
    assert gap <= FLOOR_RATIO * floor
    heat = _heat(viewer)
    assert heat.name == "dae heatmap (level 2)", w._status.text()
    status = w._status.text()
    assert "cells of 4 x 4 pixels of level 2" in status and "µm a side" in status
    assert "AUC-PR" in status and w._progress.value() == w._progress.maximum()
    w._level.setCurrentIndex(0)  # not what the weights were trained at: said before Run
    assert "learnt from 0.97 µm per pixel; level 0" in w.resolution_warning


def test_on_real_tissue_the_dock_names_the_real_weights_and_takes_their_name(make_napari_viewer):
    """Painted-slide weights on the real field: the level's warning names the weights
    trained on real H&E, the weights field completes the shipped names, and typing one
    (not a file) clears the warning."""
    from ..conftest import REPO

    viewer = make_napari_viewer()
    viewer.open(REPO / "sample_data" / "hgsc_nest.tif", plugin="napari-cpadv")
    w = DetectWidget(viewer)
    w._detector.setCurrentText("dae")
    w._level.setCurrentIndex(1)  # 1.0 µm per pixel, the level dae-he was trained at
    assert "weights 'dae-he' learnt from real H&E" in (w.resolution_warning or "")
    offered = w._weights.completer().model()
    assert [offered.index(k, 0).data() for k in range(offered.rowCount())] == ["dae-he", "dae"]
    w._weights.setText("dae-he")
    assert w.resolution_warning is None
    assert "learnt from real tissue" in w._level.toolTip()
    w._detector.setCurrentText("sparse")
    offered = w._weights.completer().model()
    assert "sparse-he" in [offered.index(k, 0).data() for k in range(offered.rowCount())]

from __future__ import annotations

import warnings

import numpy as np
import pytest

from napari_cpadv._reader import scale_bar
from napari_cpadv.errors import CpadvError

from ..conftest import SAMPLE

pytestmark = pytest.mark.gui


def _pink_fraction(viewer) -> float:
    shot = viewer.screenshot(canvas_only=False, flash=False)
    rgb = shot[..., :3].reshape(-1, 3).astype(int)
    return float(((rgb[:, 0] - rgb[:, 1] > 30) & (rgb[:, 2] - rgb[:, 1] > 20)).mean())


def test_viewer_opens_the_sample_in_micrometres(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        layer, truth = viewer.open(SAMPLE, plugin="napari-cpadv")
    assert not [w for w in caught if "ScaleBar" in str(w.message)]
    assert layer.multiscale and layer.rgb
    assert truth.name == "ground truth" and len(truth.data) >= 1
    assert tuple(truth.scale) == pytest.approx((0.243, 0.243))
    assert len(layer.data) == 3
    assert tuple(layer.scale) == pytest.approx((0.243, 0.243))
    assert all(str(u) == "micrometer" for u in layer.units)
    # the bar is shown; napari takes its unit from the layers' units (µm); opening set
    # nothing napari 0.9 ignores (ScaleBar.unit warns with a FutureWarning when set)
    bar = scale_bar(viewer)
    assert bar.visible
    viewer.reset_view()
    # The canvas shows the slide once its tiles have loaded: pink tissue, not only background.
    qtbot.waitUntil(lambda: _pink_fraction(viewer) > 0.05, timeout=60_000)


def test_sample_data_contribution(make_napari_viewer):
    viewer = make_napari_viewer()
    layers = viewer.open_sample("napari-cpadv", "synthetic_he")
    assert [type(la).__name__ for la in layers] == ["Image", "Shapes"] and layers[0].multiscale
    np.testing.assert_array_equal(np.asarray(layers[0].data[-1][:4, :4]).shape, (4, 4, 3))


def test_a_real_slide_is_offered_as_a_sample_too(make_napari_viewer):
    """Issue 16, item 11: real tissue beside the synthetic painting, without ground truth."""
    viewer = make_napari_viewer()
    layers = viewer.open_sample("napari-cpadv", "cmu_he_region")
    assert [type(la).__name__ for la in layers] == ["Image"] and layers[0].multiscale
    assert layers[0].data[0].shape == (2967, 2220, 3)
    assert layers[0].scale[-1] == pytest.approx(0.499, abs=1e-3)  # µm per pixel
    pixels = np.asarray(layers[0].data[-1])
    assert pixels.std() > 10  # tissue, not a blank page


def test_the_real_carcinoma_field_opens_with_its_typed_nuclei(make_napari_viewer):
    """Issue 28, item 3: real tissue with cell-level truth, in µm, neoplastic nuclei in a
    colour of their own."""
    viewer = make_napari_viewer()
    layers = viewer.open_sample("napari-cpadv", "hgsc_carcinoma")
    assert [type(la).__name__ for la in layers] == ["Image", "Shapes"]
    image, truth = layers
    assert image.data[0].shape == (1500, 1500, 3)
    assert image.scale[-1] == pytest.approx(0.5) and truth.scale[-1] == pytest.approx(0.5)
    assert truth.name.startswith("ground truth") and len(truth.data) == 1295
    classes = list(truth.properties["class"])
    assert classes.count("Tumor") == 288
    colours = {c: tuple(np.round(e, 3)) for c, e in zip(classes, truth.edge_color, strict=True)}
    assert len({colours["Tumor"], colours["Stroma"], colours["Immune cells"]}) == 3


def test_unreadable_slide_raises_in_the_viewer(make_napari_viewer, small_slide, tmp_path):
    bad = tmp_path / "broken.tif"
    data = small_slide.path.read_bytes()
    bad.write_bytes(data[: len(data) // 2])
    viewer = make_napari_viewer()
    with pytest.raises(Exception) as info:
        viewer.open(bad, plugin="napari-cpadv")
    chain, exc = [], info.value
    while exc is not None:
        chain.append(exc)
        exc = exc.__cause__ or exc.__context__
    assert any(isinstance(e, CpadvError) and "broken.tif" in str(e) for e in chain)
    assert len(viewer.layers) == 0


def test_the_ground_truth_outline_stays_thin_locked_and_out_of_the_way(make_napari_viewer, qtbot):
    """Issue 16, item 9: 1-2.5 screen pixels at every zoom, locked, not the active layer,
    its class as text that is off until asked for."""
    viewer = make_napari_viewer()
    slide, truth = viewer.open(SAMPLE, plugin="napari-cpadv")
    qtbot.wait(10)
    assert viewer.layers.selection.active is slide and truth.locked and truth.mode == "pan_zoom"
    assert not truth.text.visible and truth.text.string.format == "{class}"
    cam = viewer.scene.camera if hasattr(viewer, "scene") else viewer.camera
    for zoom in (0.05, 1.0, 8.0, 40.0):  # whole slide to single nuclei
        cam.zoom = zoom
        on_screen = min(truth.edge_width) * truth.scale[-1] * cam.zoom
        assert 1.0 <= on_screen <= 2.5, (zoom, on_screen)


def test_a_pan_within_the_tiles_napari_holds_reads_nothing_new(
    make_napari_viewer, qtbot, monkeypatch
):
    """Issue 18, item 2: the layer's arrays declare their tiles as chunks, so napari loads
    whole tiles and reads again only when the view leaves them. Before, every camera move
    of a continuous pan read the exact view again (every frame)."""
    viewer = make_napari_viewer()
    layer, truth = viewer.open(SAMPLE, plugin="napari-cpadv")
    viewer.layers.remove(truth)
    level0 = layer.data[0]
    assert level0.chunks[:2] == (512, 512)
    reads: list[tuple[int, int, int, int]] = []
    real = level0._read

    def counted(level, row, col, height, width):
        reads.append((row, col, height, width))
        return real(level, row, col, height, width)

    monkeypatch.setattr(level0, "_read", counted)
    cam = viewer.scene.camera if hasattr(viewer, "scene") else viewer.camera
    s = float(layer.scale[-1])
    cam.zoom = 1 / s  # one screen pixel a level-0 pixel: napari draws level 0
    r, c = 1500, 1000
    cam.center = (r * s, c * s)
    viewer.screenshot(canvas_only=True, flash=False)
    qtbot.waitUntil(lambda: layer.loaded and layer.data_level == 0 and bool(reads), timeout=30_000)
    before = list(reads)
    assert all(x[0] % 512 == 0 and x[1] % 512 == 0 for x in before)  # whole tiles
    for _ in range(4):  # 4 x 32 pixels: within the tiles already read (512-pixel tiles)
        c += 32
        cam.center = (r * s, c * s)
        viewer.screenshot(canvas_only=True, flash=False)
    qtbot.wait(50)
    assert reads == before
    c += 2048  # four tiles on: new tiles
    cam.center = (r * s, c * s)
    viewer.screenshot(canvas_only=True, flash=False)
    qtbot.waitUntil(lambda: len(reads) > len(before), timeout=30_000)

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw
from scipy import ndimage

from napari_cpadv.slide import open_slide
from napari_cpadv.slide.synthetic import BACKGROUND, make_slide
from napari_cpadv.slide.tissue import passes_hue_rule, tile_is_tissue


def _mask(shape, polygons):
    img = Image.new("L", (shape[1], shape[0]), 0)
    draw = ImageDraw.Draw(img)
    for p in polygons:
        draw.polygon([tuple(v) for v in p.exterior], fill=1)
        for h in p.holes:
            draw.polygon([tuple(v) for v in h], fill=0)
    return np.asarray(img, bool)


def test_same_seed_same_slide(tmp_path):
    a = make_slide(tmp_path / "a.tif", shape=(600, 800), seed=11, tile=256)
    b = make_slide(tmp_path / "b.tif", shape=(600, 800), seed=11, tile=256)
    c = make_slide(tmp_path / "c.tif", shape=(600, 800), seed=12, tile=256)
    la, lb, lc = (np.asarray(open_slide(s.path).levels[0]) for s in (a, b, c))
    np.testing.assert_array_equal(la, lb)
    assert a.to_json() | {"slide": None} == b.to_json() | {"slide": None}
    assert not np.array_equal(la, lc)
    assert not list(tmp_path.glob("*.part")) and not list(tmp_path.glob(".*.part"))


def test_painting_threads_alone_or_two_slides_at_once_give_the_same_bytes(tmp_path):
    """A small slide is painted on threads by default; one painter (``workers=1``) writes the
    same bytes, and two slides painted at once in one process (two dask tasks, a GUI worker
    beside a CLI call) each get their own scene: a scene shared through a module global
    painted the one slide's tiles from the other's."""
    from concurrent.futures import ThreadPoolExecutor

    def paint(name: str, seed: int, workers: int | None = None) -> bytes:
        path = tmp_path / f"{name}.tif"
        make_slide(path, shape=(768, 1024), seed=seed, tile=128, workers=workers)
        return path.read_bytes()

    alone = {seed: paint(f"alone{seed}", seed, workers=1) for seed in (3, 4)}
    with ThreadPoolExecutor(2) as ex:
        together = dict(zip((3, 4), ex.map(paint, ("with3", "with4"), (3, 4)), strict=True))
    assert together == alone and alone[3] != alone[4]


def test_truth_is_consistent(small_slide):
    t = small_slide
    assert t.tumours and all(p.exterior.shape[1] == 2 for p in t.tumours)
    assert any(p.holes for p in t.tumours), "the first tumour always has a hole"
    n = t.nuclei
    assert len(n) > 100 and n["tumour"].any() and (~n["tumour"]).any()
    # Every nucleus lies on the slide; tumour nuclei inside tumour polygons or foci.
    assert (n["x"] >= 0).all() and (n["x"] < t.shape[1]).all()
    assert (n["y"] >= 0).all() and (n["y"] < t.shape[0]).all()
    mask = _mask(t.shape, t.tumours + t.foci)
    xs, ys = n["x"].astype(int), n["y"].astype(int)
    # The painter tests the exact centre; the rasterised mask may differ by a pixel.
    near = ndimage.binary_dilation(mask, iterations=2)
    core = ndimage.binary_erosion(mask, iterations=2)
    assert near[ys, xs][n["tumour"]].all()
    assert not core[ys, xs][~n["tumour"]].any()
    # Morphology: tumour nuclei are larger and more crowded.
    assert np.median(n["radius"][n["tumour"]]) > 1.4 * np.median(n["radius"][~n["tumour"]])
    area_t = mask.sum()
    tissue = _mask(t.shape, t.tissue)
    density_t = n["tumour"].sum() / area_t
    density_n = (~n["tumour"]).sum() / (tissue & ~mask).sum()
    assert density_t > 1.5 * density_n


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_tissue_passes_hue_rule_background_fails(tmp_path, seed):
    truth = make_slide(
        tmp_path / "s.tif", shape=(1024, 1536), seed=seed, tile=256, downsamples=(1,)
    )
    img = np.asarray(open_slide(truth.path).levels[0])
    tissue = _mask(truth.shape, truth.tissue)
    tumour = _mask(truth.shape, truth.tumours) & tissue
    assert not passes_hue_rule(np.array(BACKGROUND))
    assert passes_hue_rule(img[tissue & ~tumour].mean(0))
    assert passes_hue_rule(img[tumour].mean(0))
    assert not tile_is_tissue(img[:64, :64])  # the corner is background


def test_tumour_is_not_a_flat_colour(small_slide):
    """No single-channel, single-pixel threshold separates tumour from normal tissue."""
    t = small_slide
    img = np.asarray(open_slide(t.path).levels[0]).astype(int)
    tissue = _mask(t.shape, t.tissue)
    tumour = _mask(t.shape, t.tumours + t.foci) & tissue
    normal = tissue & ~tumour
    for ch in range(3):
        pos, neg = img[..., ch][tumour], img[..., ch][normal]
        hp = np.bincount(pos, minlength=256) / len(pos)
        hn = np.bincount(neg, minlength=256) / len(neg)
        # balanced accuracy of the best threshold in either direction
        tpr = 1 - np.cumsum(hp)  # fraction of tumour above each threshold
        tnr = np.cumsum(hn)
        best = np.max(np.maximum((tpr + tnr) / 2, 1 - (tpr + tnr) / 2))
        assert best < 0.8, f"channel {ch} separates tumour by colour alone ({best:.2f})"


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="shape"):
        make_slide(tmp_path / "x.tif", shape=(0, 10))
    with pytest.raises(ValueError, match="mpp"):
        make_slide(tmp_path / "x.tif", shape=(10, 10), mpp=-1)
    with pytest.raises(ValueError, match="downsamples"):
        make_slide(tmp_path / "x.tif", shape=(100, 100), downsamples=(2, 4))
    assert not list(tmp_path.iterdir())

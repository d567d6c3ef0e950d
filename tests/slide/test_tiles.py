from __future__ import annotations

import numpy as np
import pytest

from napari_cpadv.slide import open_slide
from napari_cpadv.slide.tiles import tissue_tiles
from napari_cpadv.slide.tissue import (
    otsu_threshold,
    passes_hue_rule,
    tile_is_tissue,
    tissue_mask,
)


def test_hue_rule_edges():
    assert passes_hue_rule(np.array([200, 150, 190]))
    assert not passes_hue_rule(np.array([240, 240, 240]))  # white background
    assert not passes_hue_rule(np.array([232, 150, 200]))  # R - B = 32, not < 32
    assert not passes_hue_rule(np.array([200, 184, 220]))  # R - G = 16, not > 16
    assert not passes_hue_rule(np.array([200, 150, 166]))  # B - G = 16, not > 16
    tile = np.zeros((8, 8, 3), np.uint8)
    tile[...] = (240, 240, 240)
    tile[:6] = (180, 110, 170)
    assert tile_is_tissue(tile)
    tile[:5] = (240, 240, 240)  # one row in eight is tissue
    assert not tile_is_tissue(tile)


def test_otsu_splits_two_modes():
    values = np.concatenate([np.full(500, 0.05), np.full(300, 0.6)])
    assert 0.05 < otsu_threshold(values) < 0.6
    img = np.zeros((10, 10, 3), np.uint8)
    img[...] = (240, 240, 238)
    img[:, :4] = (200, 120, 190)
    assert tissue_mask(img, method="otsu")[:, :4].all()
    assert not tissue_mask(img, method="otsu")[:, 4:].any()
    with pytest.raises(ValueError):
        tissue_mask(img, method="magic")  # type: ignore[arg-type]


@pytest.mark.parametrize("method", ["hue", "otsu"])
def test_tissue_tiles(small_slide, method):
    slide = open_slide(small_slide.path)
    tiles = tissue_tiles(slide, level=0, size=128, min_fraction=0.9, method=method)
    everything = tissue_tiles(slide, level=0, size=128, min_fraction=0.0, method=method)
    assert 0 < len(tiles) < len(everything)
    assert len(everything) == (1001 // 128) * (1537 // 128)
    for t in tiles:
        assert tile_is_tissue(slide.read_region(0, t.row, t.col, 128, 128))
    for t in [t for t in everything if t.fraction == 0]:
        assert not tile_is_tissue(slide.read_region(0, t.row, t.col, 128, 128))


def test_tile_positions_at_a_coarser_level(small_slide):
    slide = open_slide(small_slide.path)
    tiles = tissue_tiles(slide, level=1, size=64, min_fraction=0.5)
    assert tiles
    ds = slide.downsamples[1]
    for t in tiles[:5]:
        assert (t.x0, t.y0) == (round(t.col * ds), round(t.row * ds))
        assert t.row % 64 == 0 and t.col % 64 == 0 and t.level == 1
    with pytest.raises(ValueError):
        tissue_tiles(slide, level=9, size=64)
    with pytest.raises(ValueError):
        tissue_tiles(slide, level=0, size=64, min_fraction=1.5)

"""Spatial cross-validation on one real field (issue 28, item 4): stripes that partition
the field, training tiles that keep at least the receptive field away from every test
pixel, and folds scored only on their own stripe."""

from __future__ import annotations

import numpy as np
import pytest

from napari_cpadv.annotations import read_annotations
from napari_cpadv.experiments.spatial import (
    Field,
    crossvalidate,
    fitter,
    folds,
    training_positions,
)
from napari_cpadv.models.fit import Schedule
from napari_cpadv.models.weights import resolve
from napari_cpadv.progress import drive
from napari_cpadv.slide import open_slide

from ..conftest import REPO

REAL = REPO / "sample_data" / "hgsc_nest.tif"


@pytest.mark.parametrize(("cols", "k", "gap"), [(750, 3, 32), (750, 5, 48), (1001, 2, 0)])
def test_folds_partition_the_columns_and_training_keeps_the_gap(cols, k, gap):
    side, rows = 64, 300
    made = folds(cols, k, gap)
    assert [f.index for f in made] == list(range(k))
    covered = np.zeros(cols, int)
    for f in made:
        assert f.c0 % 4 == 0 and f.c1 % 4 == 0 and f.c1 > f.c0
        covered[f.c0 : f.c1] += 1
    assert covered.max() == 1 and covered[: cols // 4 * 4].min() == 1  # disjoint, whole
    for f in made:
        positions = training_positions(rows, f, side, 32)
        assert positions, f
        for r, c in positions:
            assert 0 <= r <= rows - side and 0 <= c <= cols - side
            nearest = min(abs(c + side - 1 - f.c0), abs(c - (f.c1 - 1)))
            inside = c < f.c1 and c + side > f.c0
            assert not inside and nearest >= gap, (f, c)


def test_folds_refuse_what_cannot_be_cut():
    with pytest.raises(ValueError, match="at least 2 folds"):
        folds(750, 1, 32)
    with pytest.raises(ValueError, match=">= 0"):
        folds(750, 3, -1)
    with pytest.raises(ValueError, match="stripes"):
        folds(10, 3, 0)


@pytest.mark.slow
def test_a_detector_trained_on_two_stripes_is_scored_on_the_third():
    slide = open_slide(REAL)
    field = Field(slide, 1, read_annotations(REAL.with_suffix(".geojson")))
    train = fitter("dae", field, schedule=Schedule(autoencoder=1, head=2), seed=0)
    shipped = resolve("dae", None)
    seen: list[float] = []
    got = drive(
        crossvalidate(train, field, gap=shipped.margin, k=3, stride=96, reference=shipped),
        lambda p: seen.append(p.fraction),
    )
    # one bar over the folds, the reference's scoring in it (it had jumped to 100 % and back)
    assert seen and all(0 <= f <= 1 for f in seen) and seen == sorted(seen)
    assert got["gap"] == 32 and len(got["folds"]) == 3
    for row in got["folds"]:
        assert row["training_tiles"] > 20
        assert row["aucpr"] is None or 0 < row["null_aucpr"] < 1
        assert row["n_cells"] == (750 // 4) * ((row["columns"][1] - row["columns"][0]) // 4)

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from napari_cpadv.slide.synthetic import SyntheticSlide, make_slide

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "sample_data" / "synthetic_he.tif"


@pytest.fixture(scope="session")
def slide_factory(tmp_path_factory: pytest.TempPathFactory):
    """Synthetic slides made once per session, keyed by their arguments."""
    made: dict[tuple, SyntheticSlide] = {}

    def make(name: str, **kwargs) -> SyntheticSlide:
        key = (name, tuple(sorted((k, str(v)) for k, v in kwargs.items())))
        if key not in made:
            folder = tmp_path_factory.mktemp("slides")
            kwargs.setdefault("tile", 256)
            made[key] = make_slide(folder / f"{name}.tif", **kwargs)
        return made[key]

    return make


@pytest.fixture(scope="session")
def small_slide(slide_factory) -> SyntheticSlide:
    """1001 x 1537, 256-pixel tiles, 3 levels with non-exact downsamples, mpp 0.243."""
    return slide_factory("odd", shape=(1001, 1537), seed=3, downsamples=(1, 2, 4))


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)

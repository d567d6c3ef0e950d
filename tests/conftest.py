from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from napari_cpadv.annotations import Annotation, write_annotations
from napari_cpadv.annotations.dataset import write_tile_dataset
from napari_cpadv.slide import open_slide
from napari_cpadv.slide.synthetic import SyntheticSlide, make_slide

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "sample_data" / "synthetic_he.tif"

# Small versions of the detectors, so that CPU tests take seconds.
TINY = {
    "dae": {},
    "sparse": {"atoms": 16, "size": 8, "stride": 4, "iterations": 8},
    "resnet18": {"width": 4},
}


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


def _tile_dataset(slide_factory, tmp_path_factory, *, level: int, size: int):
    """A `cpadv tiles` folder of a small synthetic slide, with its nuclei counted."""
    truth = slide_factory("train", shape=(2048, 2048), seed=5, downsamples=(1, 2))
    folder = tmp_path_factory.mktemp("tiles")
    anns = [Annotation(p.exterior, p.holes, cls="Tumor") for p in truth.tumours]
    xml = write_annotations(anns, folder / "truth.xml")
    truth_json = truth.write_json(folder / "truth.truth.json")
    write_tile_dataset(
        open_slide(truth.path), xml, level=level, size=size, out=folder / "tiles", truth=truth_json
    )
    return folder / "tiles"


@pytest.fixture(scope="session")
def tile_folder(slide_factory, tmp_path_factory):
    """64-pixel level-1 tiles of a small synthetic slide, with cell masks and nuclei."""
    return _tile_dataset(slide_factory, tmp_path_factory, level=1, size=64)


@pytest.fixture(scope="session")
def patch_folder(slide_factory, tmp_path_factory):
    """128-pixel level-0 patches of the same slide: seed 001's labels on both sides (at
    least 5 tumour nuclei, and none)."""
    return _tile_dataset(slide_factory, tmp_path_factory, level=0, size=128)


GUI_FIXTURES = {"qtbot", "make_napari_viewer", "make_napari_viewer_proxy"}


def pytest_collection_modifyitems(config, items):
    """Tests that use a Qt or napari fixture are marked ``gui`` (so ``make test-fast``
    leaves out whatever needs a display, wherever the test lives); tests marked ``gpu`` run
    only where torch sees a CUDA device."""
    import torch

    for item in items:
        if GUI_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.gui)
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def two_workers():
    """A running LocalCluster of two workers, started as `--workers 2` starts one, shared by
    the tests that run work on a cluster."""
    from napari_cpadv.inference.cluster import Cluster, client

    with client(Cluster(workers=2)) as dask_client:
        yield Cluster(dask_client.scheduler.address, device="cpu")

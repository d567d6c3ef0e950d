from __future__ import annotations

import pytest

from napari_cpadv.annotations import Annotation, write_annotations
from napari_cpadv.annotations.dataset import write_tile_dataset
from napari_cpadv.slide import open_slide

# Small versions of the detectors, so that CPU tests take seconds.
TINY = {
    "dae": {},
    "sparse": {"atoms": 16, "size": 8, "stride": 4, "iterations": 8},
    "resnet18": {"width": 4},
}


@pytest.fixture(scope="session")
def tile_folder(slide_factory, tmp_path_factory):
    """A `cpadv tiles` folder: 64-pixel level-1 tiles of a small synthetic slide, with nuclei."""
    truth = slide_factory("train", shape=(2048, 2048), seed=5, downsamples=(1, 2))
    folder = tmp_path_factory.mktemp("tiles")
    anns = [Annotation(p.exterior, p.holes, cls="Tumor") for p in truth.tumours]
    xml = write_annotations(anns, folder / "truth.xml")
    truth_json = truth.write_json(folder / "truth.truth.json")
    write_tile_dataset(
        open_slide(truth.path), xml, level=1, size=64, out=folder / "tiles", truth=truth_json
    )
    return folder / "tiles"

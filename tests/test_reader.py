from __future__ import annotations

import numpy as np
import pytest
import tifffile
from PIL import Image

from napari_cpadv._reader import napari_get_reader, read_slide
from napari_cpadv.errors import CpadvError

from .conftest import SAMPLE


def test_reader_declines_what_is_not_a_slide(tmp_path):
    png = tmp_path / "picture.png"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(png)
    text = tmp_path / "notes.tif"
    text.write_text("hello")
    plain = tmp_path / "plain.tif"
    tifffile.imwrite(plain, np.zeros((64, 64), np.uint8))  # not tiled: OpenSlide declines
    for path in (png, text, plain, tmp_path, tmp_path / "missing.svs", [str(png), str(text)]):
        assert napari_get_reader(path if isinstance(path, list) else str(path)) is None


def test_reader_reads_the_sample():
    reader = napari_get_reader(str(SAMPLE))
    assert reader is not None
    [(data, kwargs, kind), (truth, truth_kwargs, truth_kind)] = reader(str(SAMPLE))
    assert truth_kind == "shapes" and truth_kwargs["name"] == "ground truth" and truth
    assert truth_kwargs["scale"] == pytest.approx((0.243, 0.243))
    assert kind == "image" and kwargs["multiscale"] and kwargs["rgb"]
    assert len(data) >= 3
    assert kwargs["scale"] == pytest.approx((0.243, 0.243))
    assert kwargs["units"] == ("um", "um")
    assert kwargs["name"] == SAMPLE.name
    assert kwargs["metadata"]["properties"]["openslide.vendor"] == "generic-tiff"


def test_no_mpp_shows_pixels_with_a_warning(slide_factory):
    truth = slide_factory("nompp", shape=(300, 400), mpp=None, downsamples=(1,))
    with pytest.warns(UserWarning, match="no microns per pixel"):
        [(_, kwargs, _)] = read_slide(str(truth.path))
    assert kwargs["scale"] == (1.0, 1.0) and kwargs["units"] == ("pixel", "pixel")


def test_truncated_and_corrupt_slides_raise(small_slide, tmp_path):
    data = small_slide.path.read_bytes()
    truncated = tmp_path / "cut.tif"
    truncated.write_bytes(data[: len(data) // 2])
    reader = napari_get_reader(str(truncated))
    assert reader is not None  # it looks like a slide...
    with pytest.raises(CpadvError, match="cut.tif"):
        reader(str(truncated))  # ...but cannot be read


def test_annotation_reader_declines_other_xml(tmp_path):
    from napari_cpadv._reader import napari_get_annotation_reader

    other = tmp_path / "pom.xml"
    other.write_text("<project><modelVersion>4.0.0</modelVersion></project>")
    asap = tmp_path / "a.xml"
    asap.write_text("<ASAP_Annotations><Annotations/></ASAP_Annotations>")
    geo = tmp_path / "a.geojson"
    geo.write_text('{"type": "FeatureCollection", "features": []}')
    assert napari_get_annotation_reader(str(other)) is None
    assert napari_get_annotation_reader(str(tmp_path)) is None
    assert napari_get_annotation_reader([str(asap), str(geo)]) is None
    assert napari_get_annotation_reader(str(asap)) is not None
    assert napari_get_annotation_reader(str(geo)) is not None

"""npe2 sample data shipped in ``sample_data/``: the synthetic H&E slide (with its ground
truth), a real carcinoma field with every nucleus segmented and typed (histolytics 0.3.0),
and a region of a real H&E slide (CMU-1, without ground truth)."""

from __future__ import annotations

from napari_cpadv._reader import LayerData, read_slide
from napari_cpadv.slide.synthetic import sample_slide_path


def synthetic_he_slide() -> list[LayerData]:
    """The sample slide as a multiscale RGB layer."""
    return read_slide(str(sample_slide_path()))


def hgsc_carcinoma_field() -> list[LayerData]:
    """Real tissue with cell-level truth: a field of high-grade serous carcinoma (1,500 x
    1,500 pixels, 0.5 µm per pixel estimated) with its 1,295 nuclei outlined by class
    (neoplastic as ``Tumor``), from histolytics 0.3.0 (a segmentation model's output curated
    by its authors; ``sample_data/histolytics/README.md``)."""
    from napari_cpadv.slide.synthetic import SAMPLE_DATA

    return read_slide(str(SAMPLE_DATA / "hgsc_nest.tif"))


def cmu_he_region() -> list[LayerData]:
    """Real tissue: a region of OpenSlide's CMU-1 H&E slide (no ground truth)."""
    from napari_cpadv.slide.synthetic import SAMPLE_DATA

    return read_slide(str(SAMPLE_DATA / "cmu_small_region.svs"))


def _shipped_autoencoders() -> tuple[object, object]:
    from napari_cpadv.models.weights import resolve

    return resolve("dae", None), resolve("sparse", None)


def seed000_reconstructions() -> list[LayerData]:
    """Seed 000's Figure 2 on the sample slide's most tissue-rich level-2 tile, one layer each."""
    from napari_cpadv.models.figures import slide_reconstructions
    from napari_cpadv.slide import open_slide

    dae, sparse = _shipped_autoencoders()
    slide = open_slide(sample_slide_path())
    pictures = slide_reconstructions(slide, level=2, size=128, dae=dae, sparse=sparse)
    return [(p, {"name": name, "rgb": True}, "image") for name, p in pictures.items()]


def seed000_features() -> list[LayerData]:
    """The DAE's first-layer kernels and the LCA dictionary of the shipped weights."""
    from napari_cpadv.models.figures import features

    dae, sparse = _shipped_autoencoders()
    pictures = features(dae=dae, sparse=sparse)
    return [(p, {"name": name, "rgb": True}, "image") for name, p in pictures.items()]

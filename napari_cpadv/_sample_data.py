"""npe2 sample data: the synthetic H&E slide shipped in ``sample_data/``."""

from __future__ import annotations

from pathlib import Path

from napari_cpadv._reader import LayerData, read_slide

SAMPLE_NAME = "synthetic_he.tif"
SAMPLE_SHAPE = (3000, 4000)
SAMPLE_SEED = 7


def sample_slide_path() -> Path:
    """The shipped sample slide; regenerated into the user cache when the checkout lacks it."""
    shipped = Path(__file__).resolve().parents[1] / "sample_data" / SAMPLE_NAME
    if shipped.is_file():
        return shipped
    from platformdirs import user_cache_dir

    from napari_cpadv.slide.synthetic import make_slide

    cached = Path(user_cache_dir("napari-cpadv")) / SAMPLE_NAME
    if not cached.is_file():
        cached.parent.mkdir(parents=True, exist_ok=True)
        truth = make_slide(cached, shape=SAMPLE_SHAPE, seed=SAMPLE_SEED)
        truth.write_json(cached.with_suffix(".truth.json"))
    return cached


def synthetic_he_slide() -> list[LayerData]:
    """The sample slide as a multiscale RGB layer."""
    return read_slide(str(sample_slide_path()))


def _shipped_autoencoders() -> tuple[object, object]:
    from napari_cpadv.models.weights import resolve

    return resolve("dae", None), resolve("sparse", None)


def seed000_reconstructions() -> list[LayerData]:
    """Seed 000's Figure 2 on the sample slide's most tissue-rich level-2 tile, one layer each."""
    from napari_cpadv.models.figures import reconstructions
    from napari_cpadv.slide import open_slide
    from napari_cpadv.slide.tiles import tissue_tiles

    dae, sparse = _shipped_autoencoders()
    slide = open_slide(sample_slide_path())
    level = min(2, len(slide.levels) - 1)
    t = max(tissue_tiles(slide, level=level, size=128), key=lambda t: t.fraction)
    tile = slide.read_region(level, t.row, t.col, 128, 128)
    pictures = reconstructions(tile, dae=dae, sparse=sparse)
    return [(p, {"name": name, "rgb": True}, "image") for name, p in pictures.items()]


def seed000_features() -> list[LayerData]:
    """The DAE's first-layer kernels and the LCA dictionary of the shipped weights."""
    from napari_cpadv.models.figures import features

    dae, sparse = _shipped_autoencoders()
    pictures = features(dae=dae, sparse=sparse)
    return [(p, {"name": name, "rgb": True}, "image") for name, p in pictures.items()]

"""Whole-slide access: OpenSlide behind a zarr v3 store, exposed as lazy dask levels.

Nothing here imports Qt, napari or torch.
"""

from napari_cpadv.slide.slide import Slide, open_slide

__all__ = ["Slide", "open_slide"]

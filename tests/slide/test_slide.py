from __future__ import annotations

import contextlib
import threading

import numpy as np
import openslide
import pytest
import tifffile

from napari_cpadv.errors import SlideError
from napari_cpadv.slide import open_slide
from napari_cpadv.slide.store import composite, parse_background

VARIANTS = {
    "odd-0.243": dict(shape=(1001, 1537), seed=1, mpp=0.243, downsamples=(1, 2, 4)),
    "odd-0.226": dict(shape=(777, 1201), seed=2, mpp=0.226, downsamples=(1, 2, 4)),
    "exact-non-pow2-last": dict(shape=(1536, 2304), seed=3, downsamples=(1, 2, 4, 12)),
    "no-mpp": dict(shape=(600, 900), seed=4, mpp=None, downsamples=(1, 2)),
    "single-level": dict(shape=(700, 500), seed=5, downsamples=(1,)),
    "smaller-than-a-tile": dict(shape=(200, 300), seed=6, downsamples=(1,)),
}


def _reference(osr: openslide.OpenSlide, level: int, row: int, col: int, h: int, w: int):
    ds = osr.level_downsamples[level]
    rgba = np.asarray(osr.read_region((round(col * ds), round(row * ds)), level, (w, h)))
    bg = parse_background(osr.properties.get("openslide.background-color"))
    return composite(rgba, bg)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_geometry_and_mpp(slide_factory, variant):
    kw = VARIANTS[variant]
    truth = slide_factory(variant, **kw)
    slide = open_slide(truth.path)
    osr = openslide.OpenSlide(truth.path)
    assert len(slide.levels) == len(kw["downsamples"]) == osr.level_count
    for level, arr in enumerate(slide.levels):
        cols, rows = osr.level_dimensions[level]
        assert arr.shape == (rows, cols, 3)
        assert arr.dtype == np.uint8
        assert arr.chunksize[:2] == (min(256, rows), min(256, cols))
        assert slide.downsamples[level] == pytest.approx(osr.level_downsamples[level])
    if kw.get("mpp", 0.243) is None:
        assert slide.mpp is None
        assert slide.level_scale(0) is None
    else:
        mpp = kw.get("mpp", 0.243)
        assert slide.mpp == pytest.approx((mpp, mpp), rel=1e-6)
        assert slide.level_scale(len(slide.levels) - 1) == pytest.approx(
            (mpp * slide.downsamples[-1],) * 2, rel=1e-6
        )


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_levels_equal_openslide_at_every_level(slide_factory, variant, rng):
    """Random regions of every level, pixel for pixel, against OpenSlide.read_region.

    OpenSlide resamples when level-0 coordinates fall between the pixels of a level
    (a downsample that is not an integer), even at tile seams, so on such levels regions
    inside the first tile are compared exactly and the far corner to within resampling.
    """
    truth = slide_factory(variant, **VARIANTS[variant])
    slide = open_slide(truth.path)
    osr = openslide.OpenSlide(truth.path)
    for level, arr in enumerate(slide.levels):
        rows, cols = arr.shape[:2]
        exact = float(slide.downsamples[level]).is_integer()
        for _ in range(6):
            h, w = (
                int(rng.integers(1, min(rows, 300) + 1)),
                int(rng.integers(1, min(cols, 300) + 1)),
            )
            r, c = int(rng.integers(0, rows - h + 1)), int(rng.integers(0, cols - w + 1))
            if not exact:
                r = c = 0
                h, w = min(h, 256), min(w, 256)
            ours = arr[r : r + h, c : c + w].compute()
            np.testing.assert_array_equal(ours, _reference(osr, level, r, c, h, w))
            np.testing.assert_array_equal(slide.read_region(level, r, c, h, w), ours)
        if not exact:
            h, w = min(rows, 200), min(cols, 200)
            r, c = rows - h, cols - w
            diff = np.abs(arr[r:, c:].compute().astype(int) - _reference(osr, level, r, c, h, w))
            assert diff.mean() < 8


def test_zarr_group_serves_the_same_pixels(small_slide):
    slide = open_slide(small_slide.path)
    group = slide.zarr_group
    for level, arr in enumerate(slide.levels):
        z = group[str(level)]
        g = slide.geometry[level]
        assert z.shape == arr.shape and z.chunks[:2] == (g.tile_rows, g.tile_cols)
        np.testing.assert_array_equal(z[:300, 100:400], arr[:300, 100:400].compute())
    np.testing.assert_array_equal(group["2"][...], np.asarray(slide.levels[2]))


def test_level_matches_file_pixels(small_slide):
    """The store serves the tiles as stored: level 0 equals the TIFF page decoded by tifffile."""
    slide = open_slide(small_slide.path)
    page = tifffile.TiffFile(small_slide.path).pages[0].asarray()
    np.testing.assert_array_equal(np.asarray(slide.levels[0]), page)


def test_read_region_beyond_the_slide_is_background(small_slide):
    slide = open_slide(small_slide.path)
    rows, cols = slide.levels[1].shape[:2]
    region = slide.read_region(1, rows - 10, cols - 20, 30, 50)
    np.testing.assert_array_equal(region[:10, :20], slide.levels[1][rows - 10 :, cols - 20 :])
    assert (region[10:] == slide.background).all()
    assert (region[:, 20:] == slide.background).all()
    assert (slide.read_region(0, -500, -500, 10, 10) == slide.background).all()
    with pytest.raises(ValueError):
        slide.read_region(7, 0, 0, 10, 10)


def test_cache_shared_between_openings_and_bounded(small_slide):
    a = open_slide(small_slide.path)
    b = open_slide(small_slide.path)
    assert a.cache is b.cache
    a.cache.clear()
    a.levels[0][:256, :256].compute()
    misses = a.cache.misses
    b.levels[0][:256, :256].compute()
    assert a.cache.misses == misses and a.cache.hits >= 1
    assert a.cache.nbytes <= a.cache.max_bytes


def test_chunks_of_one_view_load_in_parallel(small_slide, monkeypatch):
    slide = open_slide(small_slide.path, workers=4)
    slide.cache.clear()
    threads: set[str] = set()
    barrier = threading.Barrier(2, timeout=10)
    original = slide.store.read_tile

    def spy(*args, **kwargs):
        threads.add(threading.current_thread().name)
        with contextlib.suppress(threading.BrokenBarrierError):
            barrier.wait()  # two reads must be in flight at once to pass
        return original(*args, **kwargs)

    monkeypatch.setattr(slide.store, "read_tile", spy)
    slide.read_region(0, 0, 0, 512, 512)
    assert len(threads) >= 2
    assert not barrier.broken


@pytest.mark.parametrize("variant", ["odd-0.243", "exact-non-pow2-last"])
def test_direct_decoding_equals_openslide(slide_factory, variant):
    truth = slide_factory(variant, **VARIANTS[variant])
    fast = open_slide(truth.path)
    assert fast.store.direct is not None and 0 in fast.store.direct.levels
    for level in range(len(fast.levels)):
        fast.cache.clear()
        direct = np.asarray(fast.levels[level])
        fast.cache.clear()
        slow = np.asarray(open_slide(truth.path, direct=False).levels[level])
        if float(fast.downsamples[level]).is_integer():
            np.testing.assert_array_equal(direct, slow)
        else:  # OpenSlide resamples such levels; the direct path gives the file's pixels
            page = tifffile.TiffFile(truth.path).pages[level].asarray()
            np.testing.assert_array_equal(direct, page)
    fast.cache.clear()


def _corrupt_first_tile(path, out, index=0):
    data = bytearray(path.read_bytes())
    with tifffile.TiffFile(path) as tf:
        off, n = tf.pages[0].dataoffsets[index], tf.pages[0].databytecounts[index]
    data[off + n // 3 : off + n] = bytes(n - n // 3)  # the entropy-coded data, zeroed
    data[off : off + 2] = b"\x00\x00"  # and no JPEG start-of-image marker
    out.write_bytes(bytes(data))
    return out


@pytest.mark.parametrize("direct", [True, False])
def test_corrupt_tile_in_the_middle_raises(small_slide, tmp_path, direct):
    bad = _corrupt_first_tile(small_slide.path, tmp_path / "middle.tif", index=5)
    slide = open_slide(bad, direct=direct)
    slide.cache.clear()
    assert (slide.store.direct is not None and 0 in slide.store.direct.levels) == direct
    with pytest.raises(SlideError, match="middle.tif.*level 0 tile \\(0, 5\\)"):
        slide.levels[0][:256, 5 * 256 : 6 * 256].compute()


def test_corrupt_tile_raises_never_blank(small_slide, tmp_path):
    bad = _corrupt_first_tile(small_slide.path, tmp_path / "corrupt.tif")
    slide = open_slide(bad)
    with pytest.raises(SlideError, match="corrupt.tif.*level 0 tile \\(0, 0\\)"):
        slide.levels[0][:10, :10].compute()
    with pytest.raises(SlideError, match="corrupt.tif"):
        slide.read_region(0, 0, 0, 10, 10)


def test_truncated_slide_raises(small_slide, tmp_path):
    data = small_slide.path.read_bytes()
    bad = tmp_path / "truncated.tif"
    bad.write_bytes(data[: int(len(data) * 0.7)])
    with pytest.raises(SlideError, match="truncated.tif"):
        open_slide(bad).validate()


def test_not_a_slide(tmp_path):
    text = tmp_path / "notes.svs"
    text.write_text("not a slide")
    with pytest.raises(SlideError, match="notes.svs.*unsupported"):
        open_slide(text)
    with pytest.raises(SlideError, match="no such file"):
        open_slide(tmp_path / "missing.tif")
    with pytest.raises(SlideError, match="not a file"):
        open_slide(tmp_path)


def test_openings_with_and_without_direct_decoding_do_not_mix_in_the_cache(slide_factory):
    truth = slide_factory("odd-0.243", **VARIANTS["odd-0.243"])
    fast = open_slide(truth.path)
    slow = open_slide(truth.path, direct=False)
    assert fast.cache is slow.cache
    level = 1  # downsample 2.0015: OpenSlide resamples this level
    direct = np.asarray(fast.levels[level])
    through = np.asarray(slow.levels[level])
    osr = openslide.OpenSlide(truth.path)
    np.testing.assert_array_equal(through[:256, :256], _reference(osr, level, 0, 0, 256, 256))
    page = tifffile.TiffFile(truth.path).pages[level].asarray()
    np.testing.assert_array_equal(direct, page)
    assert not np.array_equal(through, page)  # OpenSlide's resampled pixels, not the cache's


@pytest.mark.parametrize("colour", [(255, 255, 255), (240, 17, 3), (0, 0, 0)])
@pytest.mark.parametrize("shape", [(4, 5, 3), (1, 1, 3), (0, 7, 3), (257, 513, 3)])
def test_fill_paints_every_pixel_the_background_colour(colour, shape):
    """The fast fill (a memset for grey, row copies for a colour) equals numpy's broadcast."""
    from napari_cpadv.slide.pixels import fill

    out = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    want = np.empty(shape, np.uint8)
    want[...] = colour
    np.testing.assert_array_equal(fill(out, colour), want)


def test_a_region_inside_the_slide_is_all_tiles(small_slide):
    """No background pass over a region the tiles cover (it cost more than decoding them):
    the pixels equal the level's, edge to edge."""
    slide = open_slide(small_slide.path)
    g = slide.geometry[1]
    region = slide.read_region(1, 3, 5, g.rows - 3, g.cols - 5)
    np.testing.assert_array_equal(region, np.asarray(slide.levels[1])[3:, 5:])


def test_the_arrays_napari_reads_index_as_numpy_indexes_the_level(small_slide):
    """`Slide.arrays` (what the reader hands napari) read through `read_region`: every kind of
    index napari or a user gives answers what numpy gives on the whole level."""
    slide = open_slide(small_slide.path)
    for level, arr in enumerate(slide.arrays):
        whole = np.asarray(slide.levels[level])
        assert arr.shape == whole.shape and arr.dtype == np.uint8 and arr.ndim == 3
        assert len(arr) == whole.shape[0]
        rows = whole.shape[0]
        for key in [
            (slice(3, 300), slice(250, 517)),  # across tile edges
            (slice(None), slice(None)),
            (slice(rows - 5, rows + 40), slice(-7, None)),  # clipped at the far edges
            (slice(0, 300, 3), slice(1, 200, 2)),  # steps (napari's thumbnails)
            (np.int64(17), slice(5, 60)),
            (slice(5, 6), -1),
            (Ellipsis, 1),
            (4, 5),
            (slice(10, 10), slice(0, 5)),  # empty
            slice(2, 9),
        ]:
            np.testing.assert_array_equal(arr[key], whole[key], err_msg=f"level {level} {key}")
        np.testing.assert_array_equal(np.asarray(arr), whole)
        with pytest.raises(IndexError):
            arr[rows, 0]
        with pytest.raises(IndexError):
            arr[[1, 2], 0]


def test_opening_a_slide_for_the_viewer_imports_neither_dask_nor_zarr(small_slide):
    """Importing dask.array and zarr costs about 0.8 s of a first frame: a slide opened and
    read as napari reads it needs neither (the dask levels and the zarr view load on use)."""
    import subprocess
    import sys

    code = (
        "import sys; from napari_cpadv.slide import open_slide; "
        f"s = open_slide({str(small_slide.path)!r}); s.arrays[0][10:300, 20:600]; "
        "print(sorted(m for m in ('dask', 'dask.array', 'zarr') if m in sys.modules)); "
        "s.levels[1].compute(); s.zarr_group; "
        "print(sorted(m for m in ('dask.array', 'zarr') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split("\n")[:2] == ["[]", "['dask.array', 'zarr']"]

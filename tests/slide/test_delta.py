"""An adversarial slide is the original plus its perturbed tiles, and nothing else."""

from __future__ import annotations

import numpy as np
import pytest

from napari_cpadv.errors import SlideError
from napari_cpadv.slide import open_slide
from napari_cpadv.slide.delta import create_delta, export_tiff, is_delta, open_delta
from napari_cpadv.slide.perturb import apply


def whole(slide, level):
    g = slide.geometry[level]
    return slide.read_region(level, 0, 0, g.rows, g.cols)


@pytest.fixture
def attacked(small_slide, tmp_path):
    """A delta over the small slide with a level-1 region of 100 x 150 perturbed."""
    original = open_slide(small_slide.path)
    delta = create_delta(small_slide.path, tmp_path / "adv.delta.zarr")
    region = original.read_region(1, 90, 120, 100, 150)
    rng = np.random.default_rng(0)
    noise = rng.integers(-3, 4, size=region.shape)
    adv = np.clip(region.astype(int) + noise, 0, 255).astype(np.uint8)
    counts = apply(delta, 1, 90, 120, adv)
    return original, delta, adv, counts, tmp_path / "adv.delta.zarr"


def test_the_attacked_level_holds_exactly_the_adversarial_pixels(attacked):
    _, delta, adv, counts, _ = attacked
    np.testing.assert_array_equal(delta.read_region(1, 90, 120, 100, 150), adv)
    assert counts[1] >= 1 and set(counts) == {0, 1, 2}


def test_outside_the_touched_tiles_it_is_the_original_bit_for_bit(attacked):
    original, delta, _, _, _ = attacked
    for level, g in enumerate(original.geometry):
        a, b = whole(original, level), whole(delta, level)
        touched = np.zeros(a.shape[:2], bool)
        for tr, tc in delta.store.touched[level]:
            touched[
                tr * g.tile_rows : (tr + 1) * g.tile_rows, tc * g.tile_cols : (tc + 1) * g.tile_cols
            ] = True
        np.testing.assert_array_equal(a[~touched], b[~touched])
        assert (a != b).any()  # every level shows the attack


def test_finer_levels_carry_the_upsampled_perturbation(attacked):
    original, delta, adv, _, _ = attacked
    f = original.downsamples[1] / original.downsamples[0]
    assert f == pytest.approx(2, rel=0.01)
    d1 = adv.astype(int) - original.read_region(1, 90, 120, 100, 150).astype(int)
    fine = delta.read_region(0, 180, 240, 200, 300).astype(int)
    want = np.clip(
        original.read_region(0, 180, 240, 200, 300).astype(int)
        + np.repeat(np.repeat(d1, 2, 0), 2, 1),
        0,
        255,
    )
    np.testing.assert_array_equal(fine[2:-2, 2:-2], want[2:-2, 2:-2])


def test_the_delta_reopens_and_its_dask_levels_agree(attacked):
    _, delta, _, _, folder = attacked
    again = open_delta(folder)
    assert is_delta(folder)
    for level in range(len(again.levels)):
        np.testing.assert_array_equal(np.asarray(again.levels[level]), whole(delta, level))


def test_export_is_a_lossless_pyramid_openslide_reads(attacked, tmp_path):
    import tifffile

    _, delta, _, _, _ = attacked
    out = export_tiff(delta, tmp_path / "adv.tif")
    with tifffile.TiffFile(out) as tif:  # the stored pixels of every level, losslessly
        assert len(tif.pages) == len(delta.levels)
        for level, page in enumerate(tif.pages):
            np.testing.assert_array_equal(page.asarray(), whole(delta, level))
    exported = open_slide(out)
    assert len(exported.levels) == len(delta.levels)
    assert exported.mpp == pytest.approx(delta.mpp)
    # OpenSlide resamples levels whose downsample is not an integer; level 0 it gives as is
    np.testing.assert_array_equal(whole(exported, 0), whole(delta, 0))


def test_a_changed_original_is_refused(small_slide, tmp_path):
    import shutil

    copy = tmp_path / "copy.tif"
    shutil.copy(small_slide.path, copy)
    create_delta(copy, tmp_path / "d.delta.zarr")
    with open(copy, "ab") as f:
        f.write(b"\0")
    with pytest.raises(SlideError, match="has changed"):
        open_delta(tmp_path / "d.delta.zarr")
    with pytest.raises(SlideError, match="not a"):
        open_delta(tmp_path)


def test_coarser_levels_are_the_original_plus_the_downsampled_perturbation(small_slide, tmp_path):
    """Level 2 (downsample 4.0) under a level-1 attack at an odd place: outside the attacked
    footprint the scanner's own pixels, bit for bit; inside them plus the mean of δ over each
    coarse pixel, rounded (the old re-average of level 1 changed pixels outside it)."""
    original = open_slide(small_slide.path)
    delta = create_delta(small_slide.path, tmp_path / "adv.delta.zarr")
    row, col, h, w = 91, 117, 64, 90
    region = original.read_region(1, row, col, h, w).astype(int)
    rng = np.random.default_rng(1)
    d = rng.integers(-4, 30, size=region.shape)
    adv = np.clip(region + d, 0, 255).astype(np.uint8)
    apply(delta, 1, row, col, adv)
    d = adv.astype(int) - region  # what was really applied (after clipping)
    span = original.downsamples[2] / original.downsamples[1]
    g1 = original.geometry[1]
    a, b = whole(original, 2).astype(int), whole(delta, 2).astype(int)
    full = np.zeros((g1.rows, g1.cols, 3))
    full[row : row + h, col : col + w] = d
    cy = np.floor((np.arange(g1.rows) + 0.5) / span).astype(int)
    cx = np.floor((np.arange(g1.cols) + 0.5) / span).astype(int)
    sums = np.zeros(a.shape)
    np.add.at(sums, (cy[:, None], cx[None, :]), full)
    counts = np.zeros(a.shape[:2])
    np.add.at(counts, (cy[:, None], cx[None, :]), 1)
    reach = np.zeros(a.shape[:2], bool)
    reach[cy[row : row + h][:, None], cx[col : col + w][None, :]] = True
    want = np.clip(a + np.round(sums / np.maximum(counts, 1)[..., None]), 0, 255)
    np.testing.assert_array_equal(b[~reach], a[~reach])  # outside: the original
    np.testing.assert_array_equal(b[reach], want[reach])
    assert (b[reach] != a[reach]).mean() > 0.5


# -- damage and identity ------------------------------------------------------------------


@pytest.fixture
def one_tile(small_slide, tmp_path):
    """A delta with one level-1 tile attacked; returns (folder, chunk file of that tile)."""
    import shutil

    copy = tmp_path / "slide.tif"
    shutil.copy(small_slide.path, copy)
    folder = tmp_path / "adv.delta.zarr"
    delta = create_delta(copy, folder)
    region = open_slide(copy).read_region(1, 256, 256, 256, 256)
    apply(delta, 1, 256, 256, np.clip(region.astype(int) + 9, 0, 255).astype(np.uint8))
    chunk = folder / "1" / "c" / "1" / "1" / "0"
    assert chunk.is_file()
    return copy, folder, chunk


def _read(folder):
    d = open_delta(folder)
    return d.read_region(1, 256, 256, 256, 256)


@pytest.mark.parametrize("how", ["random64", "truncate", "delete"])
def test_a_damaged_or_missing_chunk_is_an_error_naming_the_store_and_tile(one_tile, how):
    _, folder, chunk = one_tile
    data = bytearray(chunk.read_bytes())
    if how == "random64":
        mid = len(data) // 2
        data[mid : mid + 64] = np.random.default_rng(0).integers(0, 256, 64, np.uint8).tobytes()
        chunk.write_bytes(bytes(data))
    elif how == "truncate":
        chunk.write_bytes(bytes(data[: len(data) // 2]))
    else:
        chunk.unlink()
    why = "chunk is missing" if how == "delete" else "is damaged"
    with pytest.raises(SlideError, match=rf"adv.delta.zarr: level 1 tile \(1, 1\) .*{why}"):
        _read(folder)


@pytest.mark.parametrize("how", ["delete", "empty", "no zarr.json"])
def test_a_damaged_tile_index_is_an_error_not_the_original_pixels(one_tile, how):
    import json

    _, folder, _ = one_tile
    meta_path = folder / "zarr.json"
    meta = json.loads(meta_path.read_text())
    if how == "delete":
        del meta["attributes"]["touched"]
    elif how == "empty":
        meta["attributes"]["touched"] = {}
    if how == "no zarr.json":
        meta_path.unlink()
    else:
        meta_path.write_text(json.dumps(meta))
    with pytest.raises(SlideError, match="adv.delta.zarr: .*(tile index|not a delta slide)"):
        _read(folder)


def test_the_original_is_recognised_by_its_content(one_tile, tmp_path):
    import os
    import shutil

    original, folder, _ = one_tile
    want = _read(folder)
    # a plain copy elsewhere, the original gone: found again with --original
    moved = tmp_path / "moved" / "renamed.tif"
    moved.parent.mkdir()
    shutil.copy(original, moved)
    original.unlink()
    with pytest.raises(SlideError, match="is missing .*--original"):
        open_delta(folder)
    np.testing.assert_array_equal(
        open_delta(folder, original=moved).read_region(1, 256, 256, 256, 256), want
    )
    # another file of the same size and modification time at the recorded place: refused
    other = bytearray(moved.read_bytes())
    other[-100] ^= 0xFF
    original.write_bytes(bytes(other))
    st = moved.stat()
    os.utime(original, ns=(st.st_atime_ns, st.st_mtime_ns))
    with pytest.raises(SlideError, match="is not its original slide: the content differs"):
        open_delta(folder)
    # a byte-identical copy at the recorded place: accepted (content, not inode or mtime)
    shutil.copy(moved, original)
    np.testing.assert_array_equal(_read(folder), want)


def test_cpadv_relink_records_a_moved_original_after_checking_it(one_tile, tmp_path, capsys):
    import shutil

    from napari_cpadv.cli import main

    original, folder, _ = one_tile
    want = _read(folder)
    moved = tmp_path / "elsewhere.tif"
    shutil.move(original, moved)
    not_it = tmp_path / "other.tif"
    not_it.write_bytes(moved.read_bytes()[:-1] + b"\1")
    assert main(["relink", str(folder), str(not_it)]) == 2
    assert "content differs" in capsys.readouterr().err
    assert main(["relink", str(folder), str(moved)]) == 0
    np.testing.assert_array_equal(_read(folder), want)  # found at its recorded new place


# -- applying is idempotent and order-free (a resumed or distributed run) -----------------


def _two_regions(original):
    """Two adjacent level-1 regions that share coarse pixels at level 2 and finer tiles."""
    rng = np.random.default_rng(5)
    out = []
    for row, col in ((91, 117), (91, 117 + 90)):
        region = original.read_region(1, row, col, 64, 90).astype(int)
        out.append((row, col, np.clip(region + rng.integers(-9, 10, region.shape), 0, 255)))
    return [(r, c, a.astype(np.uint8)) for r, c, a in out]


def _pyramid(delta):
    return [whole(delta, level) for level in range(len(delta.geometry))]


@pytest.mark.parametrize("order", ["again", "reversed"])
def test_applying_a_region_twice_or_in_another_order_gives_the_same_slide(
    small_slide, tmp_path, order
):
    """A resumed run re-applies the tile it was writing when it stopped, and a cluster
    returns tiles in any order: the slide must not depend on either (the old apply added δ
    to what the delta held, so a second apply doubled δ at the finer and coarser levels)."""
    original = open_slide(small_slide.path)
    regions = _two_regions(original)
    once = create_delta(small_slide.path, tmp_path / "once.delta.zarr")
    for row, col, adv in regions:
        apply(once, 1, row, col, adv)
    other = create_delta(small_slide.path, tmp_path / "other.delta.zarr")
    sequence = regions + regions[:1] if order == "again" else regions[::-1]
    for row, col, adv in sequence:
        apply(other, 1, row, col, adv)
    for a, b in zip(_pyramid(once), _pyramid(other), strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(other.read_region(1, 91, 117, 64, 90), regions[0][2])

"""Slides other tools and scanners wrote (tests/data/README.md says where each comes from),
and files made damaged from them byte by byte: exact pixels, loud and local failures."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import openslide
import pytest
import tifffile

from napari_cpadv.errors import SlideError
from napari_cpadv.slide import open_slide

DATA = Path(__file__).resolve().parents[1] / "data"
CMU = Path(__file__).resolve().parents[2] / "sample_data" / "cmu_small_region.svs"
TIFF_SLIDES = [CMU, DATA / "small.svs", DATA / "boxes.tiff"]


def _stored(path: Path, page: int) -> np.ndarray:
    return tifffile.TiffFile(path).pages[page].asarray()


@pytest.mark.parametrize("path", TIFF_SLIDES, ids=lambda p: p.name)
def test_every_level_is_the_pixels_the_file_stores(path):
    slide = open_slide(path)
    osr = openslide.OpenSlide(path)
    assert len(slide.levels) == osr.level_count  # nothing left out: every level is stored
    for level in range(len(slide.levels)):
        assert slide.store.stored(level)
        np.testing.assert_array_equal(np.asarray(slide.levels[level]), _stored(path, level))


def test_non_integer_downsamples_are_not_resampled_tile_by_tile():
    # boxes.tiff levels 2 and 3 have downsamples 4.016 and 8.086: OpenSlide paints each of
    # their tiles shifted by its own fraction of a pixel; the file's pixels have no seams
    slide = open_slide(DATA / "boxes.tiff")
    assert not float(slide.downsamples[2]).is_integer()
    through = np.asarray(open_slide(DATA / "boxes.tiff", direct=False).levels[2])
    stored = _stored(DATA / "boxes.tiff", 2)
    assert not np.array_equal(through, stored)  # the old path: resampled
    np.testing.assert_array_equal(np.asarray(slide.levels[2]), stored)


def test_jpeg2000_aperio_levels_are_stored_pixels(tmp_path):
    # Aperio's JPEG 2000 (compression 33005, RGB) with a level at downsample 2.0039
    img = tifffile.imread(CMU)[:512, :512]
    half = img[: 2 * 255, : 2 * 255].reshape(255, 2, 255, 2, 3).mean(axis=(1, 3)).astype(np.uint8)
    path = tmp_path / "j2k.svs"
    with tifffile.TiffWriter(path) as tw:
        desc = "Aperio Image Library v11.2.1 \r\n512x512 (256x256) J2K/KDU Q=70|MPP = 0.4990"
        for k, level in enumerate((img, half)):
            tw.write(
                level,
                tile=(256, 256),
                compression=33005,
                photometric="rgb",
                description=desc if k == 0 else "Aperio Image Library v11.2.1 \r\nlevel",
                metadata=None,
            )
    slide = open_slide(path)
    assert slide.vendor == "aperio" and slide.downsamples[1] == pytest.approx(512 / 255)
    for level in (0, 1):
        assert slide.store.stored(level)
        np.testing.assert_array_equal(np.asarray(slide.levels[level]), _stored(path, level))


# -- damaged files ----------------------------------------------------------------------


def _damage(src: Path, out: Path, index: int, how: str, page: int = 0) -> Path:
    data = bytearray(src.read_bytes())
    with tifffile.TiffFile(src) as tf:
        off, n = tf.pages[page].dataoffsets[index], tf.pages[page].databytecounts[index]
    if how == "random64":  # 64 bytes in the middle of the entropy-coded data
        mid = off + n // 2
        data[mid : mid + 64] = np.random.default_rng(index).integers(0, 256, 64, np.uint8).tobytes()
    else:  # "zero-half": the second half of the tile zeroed
        data[off + n // 2 : off + n] = bytes(n - n // 2)
    out.write_bytes(bytes(data))
    return out


ACROSS = -(-2220 // 240)  # tiles across cmu_small_region.svs
MESSAGES = {
    "random64": "Corrupt JPEG data: premature end of data segment",
    "zero-half": "Premature end of JPEG file",
}


@pytest.mark.parametrize("how", sorted(MESSAGES))
@pytest.mark.parametrize("direct", [True, False])
def test_a_corrupt_jpeg_tile_is_refused_on_every_path(tmp_path, how, direct):
    bad = _damage(CMU, tmp_path / "bad.svs", index=ACROSS + 3, how=how)  # tile (1, 3)
    osr = openslide.OpenSlide(bad)
    with pytest.raises(openslide.OpenSlideError, match=MESSAGES[how]):
        osr.read_region((3 * 240, 240), 0, (240, 240))
    slide = open_slide(bad, direct=direct)
    assert slide.store.stored(0) == direct
    with pytest.raises(SlideError, match=r"bad\.svs.*level 0 tile \(1, 3\).*" + MESSAGES[how]):
        slide.levels[0][240:480, 720:960].compute()
    with pytest.raises(SlideError, match=r"level 0 tile \(1, 3\)"):
        slide.read_region(0, 200, 700, 100, 100)
    with pytest.raises(SlideError, match=r"bad\.svs.*level 0 tile \(1, 3\)"):
        slide.arrays[0][200:300, 700:800]  # what napari reads


@pytest.mark.parametrize("direct", [True, False])
def test_a_failed_tile_fails_alone_and_each_error_names_its_own_tile(tmp_path, direct):
    once = _damage(CMU, tmp_path / "once.svs", index=ACROSS + 3, how="random64")
    bad = _damage(once, tmp_path / "two.svs", index=3 * ACROSS + 5, how="zero-half")
    slide = open_slide(bad, direct=direct)
    intact = np.asarray(open_slide(CMU).levels[0])
    with pytest.raises(SlideError, match=r"tile \(1, 3\)"):
        slide.store.read_tile(0, 1, 3)
    # every other tile still reads, exactly (OpenSlide's handle was reopened after the error)
    for tr, tc in [(0, 0), (2, 7), (5, 1), (12, 9)]:
        tile = slide.store.read_tile(0, tr, tc)
        r, c = tr * 240, tc * 240
        want = intact[r : r + 240, c : c + 240]
        np.testing.assert_array_equal(tile[: want.shape[0], : want.shape[1]], want)
    with pytest.raises(SlideError, match=r"tile \(3, 5\).*Premature end of JPEG file"):
        slide.store.read_tile(0, 3, 5)
    with pytest.raises(SlideError, match=r"tile \(1, 3\).*premature end of data segment"):
        slide.store.read_tile(0, 1, 3)
    np.testing.assert_array_equal(slide.store.read_tile(0, 0, 1), intact[:240, 240:480])


def test_unreadable_svs_is_refused_by_info_with_exit_2(tmp_path):
    # openslide-python's unreadable.svs opens but its tile cannot be decoded
    proc = subprocess.run(
        [sys.executable, "-m", "napari_cpadv.cli", "info", str(DATA / "unreadable.svs")],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "unreadable.svs" in lines[0] and "tile (0, 0)" in lines[0]
    with pytest.raises(SlideError, match="unopenable.tiff.*Unsupported TIFF compression"):
        open_slide(DATA / "unopenable.tiff")


def test_a_file_without_read_permission_says_so(tmp_path, monkeypatch):
    target = tmp_path / "locked.svs"
    shutil.copy(DATA / "small.svs", target)
    real_open = Path.open

    def deny(self, *args, **kwargs):
        if self == target:
            raise PermissionError(13, "Permission denied", str(self))
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", deny)
    with pytest.raises(SlideError, match="locked.svs: permission denied"):
        open_slide(target)
    if os.geteuid() != 0:  # root reads every file: the real check only as a user
        monkeypatch.undo()
        target.chmod(0)
        with pytest.raises(SlideError, match="permission denied"):
            open_slide(target)


def test_a_truncated_first_page_offset_is_a_clear_error_not_a_console_warning(tmp_path, capfd):
    data = bytearray(CMU.read_bytes()[:5000])
    data[4:8] = (10**6).to_bytes(4, "little")  # first page beyond the end of the file
    bad = tmp_path / "cut.svs"
    bad.write_bytes(bytes(data))
    with pytest.raises(SlideError, match="cut.svs: a damaged TIFF.*invalid offset to first page"):
        open_slide(bad)
    from napari_cpadv._reader import napari_get_reader

    reader = napari_get_reader(str(bad))
    assert reader is not None
    with pytest.raises(SlideError, match="invalid offset"):
        reader(str(bad))
    assert "invalid offset" not in capfd.readouterr().err


# -- resolution -------------------------------------------------------------------------


def test_a_tiff_writers_72_dpi_default_is_not_a_microscope_resolution():
    from napari_cpadv._reader import read_slide

    osr = openslide.OpenSlide(DATA / "boxes.tiff")
    assert float(osr.properties["openslide.mpp-x"]) == pytest.approx(352.78, abs=0.01)
    slide = open_slide(DATA / "boxes.tiff")
    assert slide.mpp is None
    with pytest.warns(UserWarning, match="boxes.tiff: the slide records no microns per pixel"):
        [(_, kwargs, _)] = read_slide(str(DATA / "boxes.tiff"))
    assert kwargs["units"] == ("pixel", "pixel")
    assert open_slide(CMU).mpp == pytest.approx((0.499, 0.499))


@pytest.mark.parametrize(
    ("unit", "per_unit", "expected"),
    [
        ("inch", 96.0, None),
        ("inch", 72.0, None),
        ("centimeter", 96 / 2.54, None),
        ("centimeter", 1e4 / 0.25, (0.25, 0.25)),
        ("none", 1e4 / 0.25, None),
    ],
)
def test_resolution_tags_of_generic_tiffs(tmp_path, unit, per_unit, expected):
    path = tmp_path / f"res-{unit}.tif"
    tifffile.imwrite(
        path,
        np.full((256, 256, 3), 200, np.uint8),
        tile=(128, 128),
        photometric="rgb",
        resolution=(per_unit, per_unit),
        resolutionunit={"inch": 2, "centimeter": 3, "none": 1}[unit],
        metadata=None,
    )
    mpp = open_slide(path).mpp
    assert mpp == (pytest.approx(expected) if expected else None)


# -- hostile sizes ----------------------------------------------------------------------


def test_validate_does_bounded_work_on_a_huge_declared_size(tmp_path):
    path = tmp_path / "huge.tif"
    side = 200_000  # 152,000 tiles declared, every one left out of the file
    empty = (b"" for _ in range((-(-side // 512)) ** 2))
    with tifffile.TiffWriter(path, bigtiff=True) as tw:
        tw.write(
            empty,
            shape=(side, side, 3),
            dtype=np.uint8,
            tile=(512, 512),
            photometric="rgb",
            compression="jpeg",
        )
    assert path.stat().st_size < 4 * 2**20
    slide = open_slide(path)
    assert slide.levels[0].shape == (side, side, 3)
    reads: list[tuple[int, int, int]] = []
    original = slide.store.read_tile
    slide.store.read_tile = lambda *k: reads.append(k) or original(*k)  # type: ignore[method-assign]
    slide.validate()
    assert 0 < len(reads) <= 64 + len(slide.levels)
    with pytest.raises(SlideError, match=r"huge.tif: .* needs level 0 \(200000 x 200000 pixels\)"):
        slide.check_in_memory(0, "a tissue mask")


# -- DICOM ------------------------------------------------------------------------------


def test_dicom_slides_are_offered_to_the_napari_reader(tmp_path):
    from napari_cpadv._reader import napari_get_dicom_folder_reader, napari_get_reader

    folder = tmp_path / "case"
    folder.mkdir()
    for name in ("boxes_0.dcm", "boxes_1.dcm"):
        shutil.copy(DATA / name, folder / name)
    reader = napari_get_reader(str(folder / "boxes_0.dcm"))
    assert reader is not None
    [(data, kwargs, kind)] = reader(str(folder / "boxes_0.dcm"))
    osr = openslide.OpenSlide(folder / "boxes_0.dcm")
    assert kind == "image" and kwargs["metadata"]["properties"]["openslide.vendor"] == "dicom"
    assert kwargs["units"] == ("um", "um") and kwargs["scale"] == pytest.approx((0.499, 0.499))
    want = np.asarray(osr.read_region((0, 0), 0, osr.level_dimensions[0]))[..., :3]
    np.testing.assert_array_equal(np.asarray(data[0]), want)
    folder_reader = napari_get_dicom_folder_reader(str(folder))
    assert folder_reader is not None
    [(data2, _, _)] = folder_reader(str(folder))
    np.testing.assert_array_equal(np.asarray(data2[0]), want)
    assert napari_get_dicom_folder_reader(str(tmp_path / "nothing")) is None
    other = tmp_path / "ct.dcm"
    other.write_bytes(b"\0" * 128 + b"DICM" + b"\0" * 64)  # a DICOM, not a slide
    assert napari_get_reader(str(other)) is None


def test_whole_level_work_on_a_huge_level_is_refused_with_its_size(tmp_path, monkeypatch):
    from napari_cpadv.annotations import Annotation
    from napari_cpadv.inference.evaluate import cell_labels
    from napari_cpadv.slide.tiles import tissue_tiles

    path = tmp_path / "big.tif"
    empty = (b"" for _ in range(-(-30_000 // 512) * -(-40_000 // 512)))
    with tifffile.TiffWriter(path, bigtiff=True) as tw:
        tw.write(
            empty,
            shape=(30_000, 40_000, 3),
            dtype=np.uint8,
            tile=(512, 512),
            photometric="rgb",
            compression="jpeg",
        )
    slide = open_slide(path)
    monkeypatch.setenv("CPADV_MAX_MEMORY", str(2**28))  # a 256 MiB machine
    with pytest.raises(SlideError, match=r"big.tif: the tissue mask needs level 0 .*0.2 GiB"):
        tissue_tiles(slide, level=0, size=512)
    tumour = Annotation([(0, 0), (100, 0), (100, 100)])
    with pytest.raises(SlideError, match=r"big.tif: the cell labels of a whole level needs"):
        cell_labels(slide, [tumour], 0, (10, 10))


@pytest.mark.parametrize("codec", ["none", "lzw", "deflate", "zstd", "jpeg"])
def test_stored_pixels_for_every_codec_on_a_non_integer_level(tmp_path, codec):
    img = tifffile.imread(CMU)[:700, :900]
    half = img[:698, :898].reshape(349, 2, 449, 2, 3).mean(axis=(1, 3)).astype(np.uint8)
    path = tmp_path / f"{codec}.tif"
    with tifffile.TiffWriter(path) as tw:
        for k, level in enumerate((img, half)):
            tw.write(level, tile=(256, 256), photometric="rgb", subfiletype=1 if k else 0,
                     compression=None if codec == "none" else codec, metadata=None)  # fmt: skip
    try:
        openslide.OpenSlide(path)
    except openslide.OpenSlideError as exc:
        pytest.skip(f"OpenSlide does not read {codec} TIFFs: {exc}")
    slide = open_slide(path)
    assert not float(slide.downsamples[1]).is_integer()
    for level in (0, 1):
        assert slide.store.stored(level), codec
        np.testing.assert_array_equal(np.asarray(slide.levels[level]), _stored(path, level))


def test_a_damaged_probe_tile_keeps_its_level_and_fails_alone(tmp_path):
    # boxes.tiff level 2 (downsample 4.016, deflate): its tile (0, 0) is the only one at a
    # whole level-0 offset, the one the stored pixels are checked on at open
    bad = _damage(DATA / "boxes.tiff", tmp_path / "boxes.tiff", index=0, how="zero-half", page=2)
    openslide.OpenSlide(bad).read_region((0, 0), 2, (75, 62))  # libtiff shows the damage
    slide = open_slide(bad)
    assert len(slide.levels) == 4 and slide.store.stored(2)  # not dropped, not left out
    with pytest.raises(SlideError, match=r"boxes.tiff.*level 2 tile \(0, 0\)"):
        slide.store.read_tile(2, 0, 0)
    stored = _stored(DATA / "boxes.tiff", 2)
    np.testing.assert_array_equal(slide.store.read_tile(2, 0, 1)[:62, : 75 - 64], stored[:, 64:])
    np.testing.assert_array_equal(np.asarray(slide.levels[1]), _stored(DATA / "boxes.tiff", 1))


@pytest.mark.slow
def test_cpadv_mask_on_a_huge_declared_level_is_one_line_and_exit_2(tmp_path, capsys):
    from napari_cpadv.cli import main

    path = tmp_path / "claims.tif"
    side = 400_000
    empty = (b"" for _ in range((-(-side // 512)) ** 2))
    with tifffile.TiffWriter(path, bigtiff=True) as tw:
        tw.write(empty, shape=(side, side, 3), dtype=np.uint8, tile=(512, 512),
                 photometric="rgb", compression="jpeg")  # fmt: skip
    xml = tmp_path / "a.xml"
    xml.write_text(
        '<ASAP_Annotations><Annotations><Annotation Type="Polygon" PartOfGroup="_0">'
        '<Coordinates><Coordinate Order="0" X="0" Y="0"/><Coordinate Order="1" X="9" Y="0"/>'
        '<Coordinate Order="2" X="9" Y="9"/></Coordinates></Annotation></Annotations>'
        "</ASAP_Annotations>"
    )
    out = tmp_path / "mask.tif"
    assert main(["mask", str(path), str(xml), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "claims.tif" in err[0] and "needs level 0 (400000 x 400000" in err[0]
    assert not out.exists() and not list(tmp_path.glob(".*.part"))


def test_concurrent_reads_beside_a_damaged_tile_never_take_its_error(tmp_path):
    """Threads reading intact tiles while one reads the damaged tile: OpenSlide's shared
    handle is spoilt under them, and each must still get its own pixels or its own error."""
    bad = _damage(CMU, tmp_path / "bad.svs", index=ACROSS + 3, how="random64")  # tile (1, 3)
    intact = np.asarray(open_slide(CMU).levels[0])
    slide = open_slide(bad, direct=False, workers=8)
    for _ in range(25):
        slide.cache.clear()
        with pytest.raises(SlideError, match=r"level 0 tile \(1, 3\)"):
            slide.read_region(0, 0, 0, 720, 1200)  # tiles (0..2, 0..4) around (1, 3)
        slide.cache.clear()
        np.testing.assert_array_equal(slide.read_region(0, 0, 0, 480, 720), intact[:480, :720])

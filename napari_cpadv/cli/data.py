"""``cpadv info, relink, sample, convert, mask, tiles``: slides and annotations."""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path
from typing import Any

from napari_cpadv.cli._common import (
    MAX_SIDE,
    POSITIVE,
    _int_in,
    _positive_float,
    _slide_at,
)
from napari_cpadv.errors import CpadvError


def _info(args: argparse.Namespace) -> dict[str, Any]:
    from napari_cpadv.slide import open_slide

    slide = open_slide(args.slide)
    slide.validate()
    return {
        "path": str(slide.path),
        "vendor": slide.vendor,
        "mpp": list(slide.mpp) if slide.mpp else None,
        "levels": [
            {
                "width": g.cols,
                "height": g.rows,
                "downsample": g.downsample,
                "tile_width": g.tile_cols,
                "tile_height": g.tile_rows,
                "pixels": "stored" if slide.store.stored(k) else "openslide",
            }
            for k, g in enumerate(slide.geometry)
        ],
        "levels_left_out": list(slide.store.left_out),
        "properties": dict(slide.properties),
    }


def _relink(args: argparse.Namespace) -> dict[str, Any]:
    from napari_cpadv.slide.delta import relink

    return {"delta": args.delta, "original": str(relink(args.delta, args.original))}


def _sample(args: argparse.Namespace) -> dict[str, Any]:
    from napari_cpadv.slide.synthetic import make_slide

    out = Path(args.out)
    if out.suffix.lower() not in (".tif", ".tiff"):
        raise CpadvError(out, "a synthetic slide is written as a .tif or .tiff file")
    if not out.parent.is_dir():
        raise CpadvError(out, "the folder to write into does not exist")
    rows, cols = args.shape  # positive and bounded, and --mpp > 0: the parser's types
    truth = make_slide(
        out,
        shape=(rows, cols),
        seed=args.seed,
        mpp=None if args.no_mpp else args.mpp,
        workers=args.workers,
    )
    truth_path = truth.write_json(out.with_suffix(".truth.json"))
    from napari_cpadv.annotations import Annotation, write_annotations

    tumours = [
        Annotation(p.exterior, p.holes, cls="Tumor", name=f"Tumour {k + 1}")
        for k, p in enumerate(truth.tumours)
    ]
    xml = write_annotations(tumours, out.with_suffix(".xml"))
    geojson = write_annotations(tumours, out.with_suffix(".geojson"))
    return {
        "slide": str(out),
        "truth": str(truth_path),
        "annotations": [str(xml), str(geojson)],
        "shape": [rows, cols],
        "seed": args.seed,
        "mpp": truth.mpp,
        "downsamples": list(truth.downsamples),
        "tumours": len(truth.tumours),
        "nuclei": len(truth.nuclei),
    }


def _convert(args: argparse.Namespace) -> dict[str, Any]:
    from napari_cpadv.annotations import read_annotations, write_annotations
    from napari_cpadv.annotations.model import exclusions_as_holes

    src, dst = Path(args.input), Path(args.output)
    if src.suffix.lower() == dst.suffix.lower():
        raise CpadvError(dst, f"converting needs two formats; both are {src.suffix}")
    anns = read_annotations(src)
    if args.exclusions_as_holes:  # for QuPath's area measurements; the mask is the same
        anns = exclusions_as_holes(anns)
    write_annotations(anns, dst)
    geometries = {g: sum(a.geometry == g for a in anns) for g in ("polygon", "points", "line")}
    return {"input": str(src), "output": str(dst), "objects": len(anns), **geometries}


def _mask(args: argparse.Namespace) -> dict[str, Any]:
    from napari_cpadv.annotations import read_annotations
    from napari_cpadv.workbench.export import write_annotation_mask

    slide = _slide_at(args)
    written = write_annotation_mask(
        slide,
        read_annotations(args.annotations),
        args.level,
        args.out,
        allow_empty=args.allow_empty,
    )
    for line in written.notes.lines():
        warnings.warn(f"{args.annotations}: {line}", UserWarning, stacklevel=1)
    return {
        "mask": str(written.path),
        "level": args.level,
        "shape": list(written.shape),
        "tumour_pixels": written.tumour_pixels,
        "tumour_fraction": written.tumour_fraction,
        "not_rasterised": written.notes.not_areas,
        "classes_not_painted": written.notes.other_classes,
    }


def _tiles(args: argparse.Namespace) -> dict[str, Any]:
    from napari_cpadv.annotations.dataset import write_tile_dataset

    slide = _slide_at(args)
    result = write_tile_dataset(
        slide,
        args.annotations,
        level=args.level,
        size=args.size,
        out=Path(args.out),
        truth=args.truth,
    )
    return result


def _add_info(sub: Any) -> None:
    info = sub.add_parser("info", help="describe a slide (JSON)")
    info.add_argument("slide", help="any slide OpenSlide reads")
    info.set_defaults(run=_info)


def _add_relink(sub: Any) -> None:
    rl = sub.add_parser(
        "relink", help="record where an adversarial slide's original now is (checked by content)"
    )
    rl.add_argument("delta", help="an adversarial slide folder (.delta.zarr)")
    rl.add_argument("original", help="the original slide, moved or copied")
    rl.set_defaults(run=_relink)


def _add_sample(sub: Any) -> None:
    sample = sub.add_parser("sample", help="write a synthetic H&E slide and its truth")
    sample.add_argument("out", help="the .tif to write; OUT.truth.json is written beside it")
    sample.add_argument(
        "--shape",
        nargs=2,
        type=_int_in(1, MAX_SIDE),
        metavar=("ROWS", "COLS"),
        default=(3000, 4000),
        help="level-0 size in pixels",
    )
    sample.add_argument("--seed", type=int, default=0, help="seed of the painting")
    sample.add_argument("--mpp", type=_positive_float, default=0.243, help="µm per level-0 pixel")
    sample.add_argument("--no-mpp", action="store_true", help="record no resolution")
    sample.add_argument("--workers", type=POSITIVE, default=None, help="painting processes")
    sample.set_defaults(run=_sample)


def _add_convert(sub: Any) -> None:
    convert = sub.add_parser("convert", help="ASAP XML <-> QuPath GeoJSON, by extension")
    convert.add_argument("input", help="annotations to read: ASAP .xml or QuPath .geojson")
    convert.add_argument("output", help="annotations to write: .xml or .geojson")
    convert.add_argument(
        "--exclusions-as-holes",
        action="store_true",
        help="cut exclusion areas (_2, normal, Exclusion) out of the other areas, exactly "
        "where they lie, instead of keeping them as objects of their own",
    )
    convert.set_defaults(run=_convert)


def _add_mask(sub: Any) -> None:
    mask = sub.add_parser("mask", help="annotations to a pyramidal TIFF mask of a slide level")
    mask.add_argument("slide", help="the slide the annotations belong to")
    mask.add_argument("annotations", help="ASAP .xml or QuPath .geojson")
    mask.add_argument("--level", type=int, default=0, help="slide level (0: full resolution)")
    mask.add_argument("--out", required=True, help="the mask to write (.tif)")
    mask.add_argument(
        "--allow-empty", action="store_true", help="write the mask even when it holds no tumour"
    )
    mask.set_defaults(run=_mask)


def _add_tiles(sub: Any) -> None:
    tiles = sub.add_parser("tiles", help="tissue tiles with cell-level masks (seed 000)")
    tiles.add_argument("slide", help="the slide to cut")
    tiles.add_argument("--annotations", default=None, help="ASAP .xml or QuPath .geojson")
    tiles.add_argument(
        "--truth", default=None, help="a synthetic slide's .truth.json: count nuclei per tile"
    )
    tiles.add_argument("--level", type=int, default=2, help="slide level to cut tiles from")
    tiles.add_argument("--size", type=POSITIVE, default=512, help="tile side, level pixels")
    tiles.add_argument("--out", required=True, help="folder for tiles/, masks/, index.csv")
    tiles.set_defaults(run=_tiles)


def add_parsers(sub: Any) -> None:
    """This group's commands."""
    _add_info(sub)
    _add_relink(sub)
    _add_sample(sub)
    _add_convert(sub)
    _add_mask(sub)
    _add_tiles(sub)

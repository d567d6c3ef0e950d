"""``cpadv``: the plugin's core, headless. Results are JSON on stdout.

Bad input prints one line on stderr naming the file and the reason, and exits with 2.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from napari_cpadv.attacks import registry as attack_registry
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
    from napari_cpadv.slide import open_slide
    from napari_cpadv.workbench.export import write_annotation_mask

    slide = open_slide(args.slide)
    if not 0 <= args.level < len(slide.levels):
        raise CpadvError(args.slide, f"level {args.level} not in 0..{len(slide.levels) - 1}")
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
    from napari_cpadv.slide import open_slide

    slide = open_slide(args.slide)
    if not 0 <= args.level < len(slide.levels):
        raise CpadvError(args.slide, f"level {args.level} not in 0..{len(slide.levels) - 1}")
    result = write_tile_dataset(
        slide,
        args.annotations,
        level=args.level,
        size=args.size,
        out=Path(args.out),
        truth=args.truth,
    )
    return result


def _drive(work: Any, label: str) -> Any:
    """Run ``work`` with one progress bar on stderr over the whole run (tqdm: fraction done,
    time spent and left, and the latest step's values), closed when the run ends."""
    from tqdm import tqdm

    from napari_cpadv.progress import drive

    with tqdm(
        total=100,
        desc=f"cpadv {label}",
        file=sys.stderr,
        bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed}<{remaining}{postfix}",
        mininterval=0.5,
        dynamic_ncols=True,
    ) as bar:

        def show(p: Any) -> None:
            value = 100 * p.fraction
            if value > bar.n:
                bar.update(value - bar.n)
            shown = {k: v for k, v in p.payload.items() if isinstance(v, int | float | str)}
            bar.set_postfix(shown, refresh=False)

        return drive(work, show)


def _hyper(args: argparse.Namespace) -> dict[str, Any]:
    keys = ("atoms", "size", "stride", "lam", "tau", "iterations", "tol", "width")
    return {k: getattr(args, k) for k in keys if getattr(args, k, None) is not None}


def _train(args: argparse.Namespace) -> dict[str, Any]:
    from napari_cpadv.models import weights
    from napari_cpadv.models.train import Schedule, fit

    device = _device(args.device)
    defaults = Schedule()
    schedule = Schedule(
        autoencoder=args.ae_epochs or defaults.autoencoder,
        dictionary=args.dict_epochs or defaults.dictionary,
        head=args.head_epochs or defaults.head,
        resnet=args.epochs or defaults.resnet,
        batch=args.batch,
        lr=args.lr,
        head_lr=args.head_lr,
        dictionary_iterations=args.dict_iterations,
    )
    try:
        detector, record = _drive(
            fit(
                args.detector,
                args.data,
                hyper=_hyper(args),
                schedule=schedule,
                holdout=args.holdout or (),
                seed=args.seed,
                device=device,
            ),
            args.command,
        )
    except ValueError as exc:
        raise CpadvError(args.data[0], str(exc)) from exc
    argv = sys.argv[1:] if args.argv is None else args.argv
    record["training"]["command"] = "cpadv " + " ".join(argv)
    record["training"]["device"] = str(device)
    out = weights.save(detector, args.out, **record)
    return {"weights": str(out), "detector": args.detector, **record}


def _device(name: str | None) -> Any:
    from napari_cpadv.device import pick_device

    try:
        return pick_device(name)
    except ValueError as exc:
        raise CpadvError(None, str(exc)) from exc


def _evaluate(args: argparse.Namespace) -> dict[str, Any]:
    from napari_cpadv.inference.evaluate import evaluate
    from napari_cpadv.models.weights import resolve
    from napari_cpadv.slide import open_slide

    slide = open_slide(args.slide)
    detector = resolve(args.detector, args.weights)
    ann = Path(args.annotations)
    truth = args.truth
    if ann.name.endswith(".truth.json"):
        truth, annotations = truth or ann, []
    else:
        annotations = _ground_truth(ann)
    if detector.output == "classes" and truth is None:
        guess = Path(args.slide).with_suffix(".truth.json")
        if not guess.is_file():
            raise CpadvError(args.slide, "resnet18 is scored on nuclei: give --truth TRUTH.json")
        truth = guess
    level = 0 if args.level is None and detector.output == "classes" else args.level
    if level is None:
        level = int(json.loads(_weights_config(args).read_text())["training"].get("level", 2))
    try:
        return _drive(
            evaluate(
                detector,
                slide,
                level=level,
                annotations=annotations,
                truth=truth,
                scope=args.scope,
                device=_device(args.device),
            ),
            args.command,
        )
    except ValueError as exc:
        raise CpadvError(args.slide, str(exc)) from exc


def _weights_config(args: argparse.Namespace) -> Path:
    from napari_cpadv.models.weights import paths, shipped

    return paths(args.weights or shipped(args.detector))[1]


def _heatmap(args: argparse.Namespace) -> dict[str, Any]:
    from napari_cpadv.inference.batch import Job, batch_heatmaps

    out = Path(args.out)
    if len(args.slides) == 1 and out.suffix == ".zarr":
        jobs = [Job(Path(args.slides[0]), out)]
    else:
        if out.suffix == ".zarr":
            raise CpadvError(out, "with several slides, --out is a folder (STEM.heatmap.zarr each)")
        out.mkdir(parents=True, exist_ok=True)
        jobs = [Job(Path(s), out / f"{Path(s).stem}.heatmap.zarr") for s in args.slides]
    try:
        written = _drive(
            batch_heatmaps(
                jobs,
                detector=args.detector,
                weights=args.weights,
                level=args.level,
                scope=args.scope,
                scheduler=args.scheduler,
                workers=args.workers,
                threads=args.threads,
                device=args.device,
            ),
            args.command,
        )
    except ValueError as exc:
        raise CpadvError(args.slides[0], str(exc)) from exc
    return {"heatmaps": [str(p) for p in written], "detector": args.detector, "level": args.level}


def _figures(args: argparse.Namespace) -> dict[str, Any]:
    import io

    from PIL import Image

    from napari_cpadv.files import write_atomic
    from napari_cpadv.models import figures
    from napari_cpadv.models.weights import resolve

    dae = resolve("dae", args.dae_weights)
    sparse = resolve("sparse", args.sparse_weights)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.kind == "features":
        pictures = figures.features(dae=dae, sparse=sparse)
    else:
        from napari_cpadv.slide import open_slide
        from napari_cpadv.slide.synthetic import sample_slide_path

        slide = open_slide(args.slide or sample_slide_path())
        pictures = figures.slide_reconstructions(
            slide, level=args.level, size=args.size, dae=dae, sparse=sparse, seed=args.seed
        )
        pictures["figure_2"] = figures.figure_2(pictures)
    written = []
    for name, picture in pictures.items():
        buf = io.BytesIO()
        Image.fromarray(picture).save(buf, format="PNG")
        written.append(str(write_atomic(out / f"{name}.png", buf.getvalue())))
    return {"figures": written}


def _budget(args: argparse.Namespace, value: float) -> Any:
    from napari_cpadv.attacks.projections import Budget

    try:
        return Budget(args.norm, value, args.unit)
    except ValueError as exc:
        raise CpadvError(None, f"--budget: {exc}") from exc


def _spec(args: argparse.Namespace, value: float) -> Any:
    from napari_cpadv.attacks.base import AttackSpec

    try:
        return AttackSpec(
            args.attack,
            _budget(args, value),
            args.level,
            steps=args.steps,
            tile=args.tile,
            seed=args.seed,
            epochs=args.epochs,
            step_size=getattr(args, "step_size", None),
            restarts=getattr(args, "restarts", 1),
            constraint=getattr(args, "constraint", "exact"),
        )
    except ValueError as exc:
        raise CpadvError(None, str(exc)) from exc


def _region(args: argparse.Namespace, slide: Any) -> tuple[int, int, int, int]:
    g0 = slide.geometry[0]
    if not args.region:
        return (0, 0, g0.cols, g0.rows)
    x, y, w, h = args.region
    if w <= 0 or h <= 0:
        raise CpadvError(args.slide, f"--region width and height must be positive, got {w} {h}")
    if x >= g0.cols or y >= g0.rows or x + w <= 0 or y + h <= 0:
        raise CpadvError(
            args.slide, f"--region {x} {y} {w} {h} lies outside the slide ({g0.cols} x {g0.rows})"
        )
    return (x, y, w, h)


def _annotations(args: argparse.Namespace) -> Any:
    """The ground truth of ``--annotations``, saying what a mask of it leaves out."""
    return _ground_truth(args.annotations) if args.annotations else None


def _ground_truth(path: str | Path) -> Any:
    """Annotations to score against; points, lines and classes neither tumour nor
    exclusion are not painted, and a warning says how many."""
    from napari_cpadv.annotations import read_annotations
    from napari_cpadv.annotations.raster import RasterNotes

    anns = read_annotations(path)
    for line in RasterNotes.of(anns).lines():
        warnings.warn(f"{path}: {line}", UserWarning, stacklevel=2)
    return anns


def _write_report(out: Path, name: str, report: dict[str, Any]) -> None:
    from napari_cpadv.files import write_json

    out.mkdir(parents=True, exist_ok=True)
    write_json(out / name, report)


def _attack(args: argparse.Namespace) -> dict[str, Any]:
    """The Attack dock's run (``workbench.attack.AttackModel.work``) on ``--region``,
    written to the run folder ``--out``: the same run, the same files."""
    from napari_cpadv.experiments.runs import RunFolder
    from napari_cpadv.experiments.tiles import tile_side
    from napari_cpadv.models.weights import resolve
    from napari_cpadv.slide import open_slide
    from napari_cpadv.workbench.attack import AttackModel

    slide = open_slide(args.slide)
    x, y, w, h = _region(args, slide)
    detector = resolve(args.detector, args.weights)
    try:  # the tile first: a budget is judged on the tile it is given for
        tile_side(detector, args.tile)
    except ValueError as exc:
        raise CpadvError(None, f"--tile: {exc}") from exc
    spec = _spec(args, args.budget)  # every argument checked before anything is written
    detectors = {args.detector: detector}
    for name in args.score_with or []:
        scored = detector if name == args.detector else resolve(name, None)
        if scored.output == "cells":  # a patch classifier has no heatmap to score
            detectors[name] = scored
    model = AttackModel(
        detector=args.detector,
        weights=args.weights,
        attack=args.attack,
        norm=spec.budget.norm,
        budget=spec.budget.value,
        unit=spec.budget.unit,
        steps=args.steps,
        step_size=args.step_size,
        restarts=args.restarts,
        seed=args.seed,
        epochs=args.epochs,
        level=args.level,
        tile=args.tile,
        device=args.device,
        constraint=args.constraint,
        batch=args.batch,
    )
    annotations = _annotations(args)
    run = RunFolder.at(args.out)
    try:
        outcome = _drive(
            model.work(
                args.slide,
                box=(float(y), float(x), float(y + h), float(x + w)),
                run=run,
                annotations=annotations,
                detectors=detectors,
                detector=detector,
            ),
            args.command,
        )
    except ValueError as exc:
        raise CpadvError(args.slide, str(exc)) from exc
    report = outcome.report
    for line in ([report["note"]] if "note" in report else []) + report.get("warnings", []):
        warnings.warn(line, UserWarning, stacklevel=1)
    return _attack_summary(report, run.report_path)


def _attack_summary(report: dict[str, Any], path: Path) -> dict[str, Any]:
    """What a terminal shows of an attack: counts, mean achieved norms, success, AUC-PR
    before and after per detector, and where the whole report (with PR curves) is."""
    import numpy as np

    aucpr = {
        name: {k: (v or {}).get("aucpr") for k, v in pair.items()}
        for name, pair in (report.get("aucpr") or {}).items()
    }
    return {
        "report": str(path),
        "delta": report["delta"],
        "detector": report["detector"],
        "attack": report["attack"],
        "level": report["level"],
        "tiles": report["tiles"],
        "attacked_box": report["attacked_box"],
        "norms_mean": {k: float(np.mean(v)) for k, v in report["norms"].items()},
        "success_rate": report["success_rate"],
        **({"float_success_rate": report["float"]["success_rate"]} if "float" in report else {}),
        "aucpr": aucpr,
        **({"note": report["note"]} if "note" in report else {}),
        "warnings": report.get("warnings", []),
    }


def _region_tiles(args: argparse.Namespace, detector: Any) -> Any:
    from napari_cpadv.experiments.tiles import region_tiles, tile_side
    from napari_cpadv.slide import open_slide

    slide = open_slide(args.slide)
    try:
        return region_tiles(
            slide,
            args.level,
            _region(args, slide),
            tile_side(detector, args.tile),
            annotations=_annotations(args),
            cell=detector.cell,
        )
    except ValueError as exc:
        raise CpadvError(args.slide, str(exc)) from exc


def _slide_report(args: argparse.Namespace, work: Any, name: str) -> dict[str, Any]:
    """Run a report generator over a slide's tiles; write ``OUT/name``; errors name the slide."""

    try:
        report = _drive(
            work,
            args.command,
        )
    except ValueError as exc:
        raise CpadvError(args.slide, str(exc)) from exc
    report["slide"] = str(args.slide)
    _write_report(Path(args.out), name, report)
    return dict(report)


def _sweep(args: argparse.Namespace) -> dict[str, Any]:
    from napari_cpadv.experiments.sweep import sweep
    from napari_cpadv.models.weights import resolve

    for value in args.budgets:
        _budget(args, value)
    detector = resolve(args.detector, args.weights)
    tiles = _region_tiles(args, detector)
    work = sweep(
        detector,
        tiles,
        _spec(args, args.budgets[0]),
        args.budgets,
        device=_device(args.device),
        batch=args.batch,
        noise=not args.no_noise,
        check=args.check,
    )
    return _slide_report(args, work, "sweep.json")


def _transfer(args: argparse.Namespace) -> dict[str, Any]:
    from dataclasses import replace

    from napari_cpadv.experiments.transfer import transfer
    from napari_cpadv.models.weights import resolve

    weights = dict(w.split("=", 1) for w in args.weights or [])
    sources = args.sources or args.detectors
    unknown = sorted((set(weights) | set(sources)) - set(args.detectors))
    if unknown:
        raise CpadvError(None, f"--weights/--sources name {unknown}, not among --detectors")
    args.attack = args.attack or "fgsm"
    spec = _spec(args, args.budget)
    detectors = {name: resolve(name, weights.get(name)) for name in args.detectors}
    specs = {  # each detector's own white-box attack in the seeds, unless --attack-all
        name: spec if args.attack_all else replace(spec, attack=detectors[name].natural_attack)
        for name in sources
    }
    tiles = _region_tiles(args, next(iter(detectors.values())))
    work = transfer(detectors, tiles, specs, device=_device(args.device), batch=args.batch)
    return _slide_report(args, work, "transfer.json")


def _universal(args: argparse.Namespace) -> dict[str, Any]:
    import io

    import numpy as np
    from PIL import Image

    from napari_cpadv.experiments.universal_study import universal_study
    from napari_cpadv.files import write_atomic
    from napari_cpadv.models.train import load_tiles
    from napari_cpadv.models.weights import resolve

    args.attack, args.level, args.tile = "universal", 0, 0
    spec = _spec(args, args.budget)
    detector = resolve(args.detector, args.weights)
    try:
        train, held = load_tiles(args.data), load_tiles(args.holdout)
        delta, report = _drive(
            universal_study(
                detector,
                train,
                held,
                spec,
                positives=not args.all_tiles,
                device=_device(args.device),
                batch=args.batch,
            ),
            args.command,
        )
    except ValueError as exc:
        raise CpadvError(None, str(exc)) from exc
    report["data"], report["holdout"] = list(args.data), list(args.holdout)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    d = delta[0].permute(1, 2, 0).cpu().numpy().astype(np.float32)
    buf = io.BytesIO()
    np.save(buf, d, allow_pickle=False)
    write_atomic(out / "universal.npy", buf.getvalue())
    scale = float(np.abs(d).max()) or 1.0  # δ amplified to the full grey range for viewing
    picture = np.round((d / scale * 0.5 + 0.5) * 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(picture).save(buf, format="PNG")
    write_atomic(out / "universal.png", buf.getvalue())
    report["delta"] = {"npy": str(out / "universal.npy"), "png": str(out / "universal.png")}
    report["png_amplification"] = 0.5 / scale
    _write_report(out, "report.json", report)
    return report


DETECTORS = ("dae", "sparse", "resnet18")
NORM_HELP = "the norm that bounds δ (none: unconstrained)"
UNIT_HELP = (
    "total: the norm of δ over a whole tile (seed 000); per_pixel: RMS (l2), mean absolute "
    "difference (l1), grey levels of 255 (linf), fraction of pixels (l0) (seed 001)"
)
BUDGET_HELP = (
    "how large δ may be, in --norm and --unit: with total, the norm of δ over one tile of "
    "pixels in [0, 1] (seed 000: l2 25 on 512 x 512 x 3; l0 a pixel count); with per_pixel, "
    "see --unit"
)
DEVICE_HELP = "cpu, cuda, cuda:1 (default: the best there is)"
SCOPE_HELP = "tissue: only tissue blocks; slide: every block"
SPARSE_HELP = {
    "atoms": "sparse coder: dictionary atoms (512)",
    "size": "sparse coder: atom side, pixels (24)",
    "stride": "sparse coder: pixels between code positions (2)",
    "lam": "sparse coder: threshold λ on standardised pixels (0.4)",
    "tau": "sparse coder: LCA time constant τ, iterations; the step is 1/τ (10)",
}


def _attack_options(
    p: argparse.ArgumentParser, *, attacks: Sequence[str], required: bool = True
) -> None:
    p.add_argument("--attack", required=required, choices=attacks, help="the attack to run")
    p.add_argument(
        "--norm", default="l2", choices=("l0", "l1", "l2", "linf", "none"), help=NORM_HELP
    )
    p.add_argument("--unit", default="total", choices=("total", "per_pixel"), help=UNIT_HELP)
    p.add_argument("--steps", type=POSITIVE, default=100, help="iterations of the attack")
    p.add_argument("--epochs", type=POSITIVE, default=10, help="universal: passes over the tiles")
    p.add_argument("--step-size", type=float, default=None, help="default: the attack's own")
    p.add_argument("--restarts", type=POSITIVE, default=1, help="PGD: random restarts")
    p.add_argument(
        "--constraint",
        choices=("exact", "seed001"),
        default="exact",
        help="PGD: exact projections, or seed 001's rules (L1/L2 rescaled to the budget, "
        "L0 the top pixels by gradient)",
    )
    p.add_argument("--batch", type=POSITIVE, default=4, help="tiles per attacked batch")
    p.add_argument("--seed", type=int, default=0, help="seed of random starts and noise")
    p.add_argument("--device", default=None, help=DEVICE_HELP)


def _region_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--region", type=int, nargs=4, metavar=("X", "Y", "W", "H"), help="level-0 pixels"
    )
    p.add_argument(
        "--level", type=int, default=2, help="slide level to attack at (0: full resolution)"
    )
    p.add_argument("--tile", type=POSITIVE, default=512, help="attacked tile side, level pixels")
    p.add_argument("--annotations", default=None, help="ground truth (ASAP XML, GeoJSON)")


def _study_create(args: argparse.Namespace) -> dict[str, Any]:
    from napari_cpadv.study.build import (
        PRESETS,
        build_study,
        default_key_path,
        manifest_hash,
        pairs_from,
        reader_codes,
    )

    preset = PRESETS.get(args.preset or "", {})
    pairs = pairs_from(args.pairs, truth=args.truth)
    key = Path(args.key) if args.key else default_key_path(Path(args.out))
    path = build_study(
        pairs,
        args.out,
        readers=args.readers,
        key=key,
        replicates=preset.get("replicates", 2) if args.replicates is None else args.replicates,
        seed=args.seed,
        min_gap=preset.get("min_gap", 2) if args.min_gap is None else args.min_gap,
        questions=args.questions or preset.get("questions"),
        allow_corrections=args.allow_corrections,
        view_tracking=args.track_view,
    )
    manifest = json.loads(path.read_text())
    return {
        "manifest": str(path),
        "manifest_sha256": manifest_hash(path),
        "key": str(key),
        "study_id": manifest["study_id"],
        "cases": len(pairs),
        "presentations": len(manifest["order"]),
        "seed": args.seed,
        # shown once: hand each reader their own code; the key keeps them for the analysis
        "reader_codes": reader_codes(key),
    }


def _study_analyze(args: argparse.Namespace) -> dict[str, Any]:
    from napari_cpadv.study.analyze import analyze

    summary = analyze(
        args.study,
        args.key,
        args.out,
        receipts=args.receipts,
        allow_damaged=args.allow_damaged,
    )
    return {
        "out": str(Path(args.out)),
        "readers": {
            name: {
                cond: {
                    k: e.get(k)
                    for k in ("n", "tp", "fn", "tn", "fp", "sensitivity", "specificity")
                    if k in e
                }
                for cond, e in s["by_condition"].items()
            }
            for name, s in summary["readers"].items()
        },
        "notes": summary["notes"],
    }


class _Help(argparse.HelpFormatter):
    """Each option's help ends with its default, where it has one and the help does not
    already say what happens without it."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if default in (None, False, argparse.SUPPRESS) or "default" in text or not text:
            return text
        shown = " ".join(map(str, default)) if isinstance(default, list | tuple) else default
        return f"{text} (default: {shown})"


class _Parser(argparse.ArgumentParser):
    """argparse with the project's error form: one line naming the command, exit 2, and
    every option's default in its help."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _Help)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message}\n")


def _int_in(low: int, high: int | None = None) -> Any:
    """An argparse type: an integer from ``low`` (to ``high``)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < low or (high is not None and value > high):
            bound = f"from {low} to {high}" if high is not None else f">= {low}"
            raise argparse.ArgumentTypeError(f"{value} is out of range: give an integer {bound}")
        return value

    return parse


def _positive_float(text: str) -> float:
    """An argparse type: a finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"{text} must be a finite number > 0")
    return value


POSITIVE = _int_in(1)
MAX_SIDE = 262_144
"""The largest synthetic slide side ``cpadv sample`` paints (Camelyon16's are ~200,000)."""
MAX_REPLICATES = 20


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="cpadv", description="Adversarial audits of tumour detectors on whole-slide images."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    info = sub.add_parser("info", help="describe a slide (JSON)")
    info.add_argument("slide", help="any slide OpenSlide reads")
    info.set_defaults(run=_info)

    rl = sub.add_parser(
        "relink", help="record where an adversarial slide's original now is (checked by content)"
    )
    rl.add_argument("delta", help="an adversarial slide folder (.delta.zarr)")
    rl.add_argument("original", help="the original slide, moved or copied")
    rl.set_defaults(run=_relink)

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

    mask = sub.add_parser("mask", help="annotations to a pyramidal TIFF mask of a slide level")
    mask.add_argument("slide", help="the slide the annotations belong to")
    mask.add_argument("annotations", help="ASAP .xml or QuPath .geojson")
    mask.add_argument("--level", type=int, default=0, help="slide level (0: full resolution)")
    mask.add_argument("--out", required=True, help="the mask to write (.tif)")
    mask.add_argument(
        "--allow-empty", action="store_true", help="write the mask even when it holds no tumour"
    )
    mask.set_defaults(run=_mask)

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

    train = sub.add_parser("train", help="train a detector on `cpadv tiles` folders")
    train.add_argument("detector", choices=("dae", "sparse", "resnet18"), help="what to train")
    train.add_argument("data", nargs="+", help="`cpadv tiles` folders")
    train.add_argument("--out", required=True, help="NAME.safetensors (NAME.json beside it)")
    train.add_argument("--holdout", nargs="*", help="tile folders to score after training")
    train.add_argument("--seed", type=int, default=0, help="seed of every random choice")
    train.add_argument("--device", default=None, help="cpu, cuda, cuda:1 (default: best)")
    train.add_argument("--batch", type=POSITIVE, default=8, help="tiles per training step")
    train.add_argument("--lr", type=float, default=1e-3, help="DAE learning rate (Adam)")
    train.add_argument("--head-lr", type=float, default=1e-3, help="cell head learning rate")
    train.add_argument("--ae-epochs", type=int, default=None, help="DAE epochs (4)")
    train.add_argument("--dict-epochs", type=float, default=None, help="LCA epochs (1.4)")
    train.add_argument("--head-epochs", type=int, default=None, help="cell head epochs (10)")
    train.add_argument("--epochs", type=POSITIVE, default=None, help="ResNet-18 epochs (25)")
    for flag, kind in (("atoms", int), ("size", int), ("stride", int), ("lam", float)):
        train.add_argument(f"--{flag}", type=kind, default=None, help=SPARSE_HELP[flag])
    train.add_argument("--tau", type=float, default=None, help=SPARSE_HELP["tau"])
    train.add_argument(
        "--iterations", type=int, default=None, help="sparse coder: LCA iteration cap (500)"
    )
    train.add_argument(
        "--tol",
        type=float,
        default=None,
        help="sparse coder: stop on this relative change of the potentials (3e-3; 0: the cap)",
    )
    train.add_argument(
        "--dict-iterations",
        type=int,
        default=None,
        help="LCA iterations per dictionary-learning step (default: the coder's cap and tol)",
    )
    train.add_argument("--width", type=int, default=None, help="ResNet-18 first-stage width")
    train.set_defaults(run=_train)

    ev = sub.add_parser("evaluate", help="score a detector on a slide with known truth")
    ev.add_argument("slide", help="the slide to score on")
    ev.add_argument("annotations", help="ASAP .xml / QuPath .geojson, or a synthetic .truth.json")
    ev.add_argument("--detector", required=True, choices=DETECTORS, help="what to score")
    ev.add_argument("--weights", default=None, help="default: the shipped weights")
    ev.add_argument("--level", type=int, default=None, help="default: the level trained at")
    ev.add_argument("--truth", default=None, help="synthetic .truth.json (resnet18's labels)")
    ev.add_argument("--scope", choices=("tissue", "slide"), default="tissue", help=SCOPE_HELP)
    ev.add_argument("--device", default=None, help=DEVICE_HELP)
    ev.set_defaults(run=_evaluate)

    hm = sub.add_parser("heatmap", help="heatmap pyramids of slides, on dask.distributed")
    hm.add_argument("slides", nargs="+", help="slides to run the detector over")
    hm.add_argument("--detector", required=True, choices=DETECTORS, help="what to run")
    hm.add_argument("--weights", default=None, help="default: the shipped weights")
    hm.add_argument("--level", type=int, required=True, help="slide level to compute at")
    hm.add_argument("--out", required=True, help="HEATMAP.zarr, or a folder for several slides")
    hm.add_argument("--scope", choices=("tissue", "slide"), default="tissue", help=SCOPE_HELP)
    hm.add_argument("--scheduler", default=None, help="address of a running dask scheduler")
    hm.add_argument("--workers", type=POSITIVE, default=2, help="LocalCluster worker processes")
    hm.add_argument("--threads", type=int, default=1, help="torch threads per worker")
    hm.add_argument("--device", default=None, help=DEVICE_HELP)
    hm.set_defaults(run=_heatmap)

    fig = sub.add_parser("figures", help="seed 000's reconstructions and features as PNG")
    fig.add_argument("kind", choices=("reconstructions", "features"), help="which figure")
    fig.add_argument("--out", required=True, help="folder for the PNG files")
    fig.add_argument("--slide", default=None, help="default: the sample slide")
    fig.add_argument("--level", type=int, default=2, help="slide level of the tiles")
    fig.add_argument("--size", type=POSITIVE, default=128, help="tile side, level pixels")
    fig.add_argument("--seed", type=int, default=0, help="seed of the added noise")
    fig.add_argument("--dae-weights", default=None, help="default: the shipped weights")
    fig.add_argument("--sparse-weights", default=None, help="default: the shipped weights")
    fig.set_defaults(run=_figures)

    at = sub.add_parser("attack", help="attack a region of a slide; write an adversarial slide")
    at.add_argument("slide", help="the slide to attack")
    at.add_argument("--detector", required=True, choices=DETECTORS, help="the detector to fool")
    at.add_argument("--weights", default=None, help="default: the shipped weights")
    _attack_options(at, attacks=attack_registry.names())
    at.add_argument("--budget", type=_positive_float, default=25.0, help=BUDGET_HELP)
    _region_options(at)
    at.add_argument(
        "--score-with",
        nargs="*",
        default=None,
        help="detectors to score (default: the attacked one)",
    )
    at.add_argument(
        "--out",
        required=True,
        help="the run folder (made if missing): adversarial.delta.zarr, heatmaps, metrics, "
        "report.json, as the Attack dock writes",
    )
    at.set_defaults(run=_attack)

    sw = sub.add_parser("sweep", help="one attack over a list of budgets: a success matrix")
    sw.add_argument("slide", help="the slide to attack")
    sw.add_argument("--detector", required=True, choices=DETECTORS, help="the detector to fool")
    sw.add_argument("--weights", default=None, help="default: the shipped weights")
    _attack_options(sw, attacks=attack_registry.names())
    sw.add_argument(
        "--budgets", type=float, nargs="+", required=True, help="budgets to try; " + BUDGET_HELP
    )
    _region_options(sw)
    sw.add_argument("--no-noise", action="store_true", help="skip the equal-norm noise rows")
    sw.add_argument(
        "--check",
        action="store_true",
        help="convergence check (twice the steps), one step, and the gradient",
    )
    sw.add_argument("--out", required=True, help="folder for sweep.json")
    sw.set_defaults(run=_sweep)

    tr = sub.add_parser("transfer", help="craft on each detector, score on every detector")
    tr.add_argument("slide", help="the slide to attack")
    tr.add_argument(
        "--detectors",
        nargs="+",
        default=["dae", "sparse"],
        choices=("dae", "sparse"),
        help="detectors to craft on and score with",
    )
    tr.add_argument("--sources", nargs="*", default=None, help="default: every detector")
    tr.add_argument(
        "--weights", nargs="*", default=None, metavar="NAME=FILE", help="default: shipped"
    )
    _attack_options(tr, attacks=attack_registry.per_tile(), required=False)
    tr.add_argument(
        "--attack-all",
        action="store_true",
        help="run --attack on every source (default: each detector's own attack, "
        "FGSM on dae and the latent attack on sparse, at --budget)",
    )
    tr.add_argument("--budget", type=_positive_float, default=25.0, help=BUDGET_HELP)
    _region_options(tr)
    tr.add_argument("--out", required=True, help="folder for transfer.json")
    tr.set_defaults(run=_transfer)

    un = sub.add_parser(
        "universal", help="learn one δ on `cpadv tiles` folders, score it on held-out ones"
    )
    un.add_argument("data", nargs="+", help="`cpadv tiles` folders to learn on")
    un.add_argument("--holdout", nargs="+", required=True, help="`cpadv tiles` folders")
    un.add_argument("--detector", required=True, choices=DETECTORS, help="the detector to fool")
    un.add_argument("--weights", default=None, help="default: the shipped weights")
    un.add_argument("--norm", default="linf", choices=("l1", "l2", "linf", "none"), help=NORM_HELP)
    un.add_argument("--budget", type=_positive_float, default=8.0, help=BUDGET_HELP)
    un.add_argument("--unit", default="per_pixel", choices=("total", "per_pixel"), help=UNIT_HELP)
    un.add_argument("--epochs", type=POSITIVE, default=10, help="passes over the tiles")
    un.add_argument("--batch", type=POSITIVE, default=16, help="tiles per SGD step")
    un.add_argument("--all-tiles", action="store_true", help="not only tumour tiles")
    un.add_argument("--seed", type=int, default=0, help="seed of the tile order")
    un.add_argument("--device", default=None, help=DEVICE_HELP)
    un.add_argument("--out", required=True, help="folder for universal.npy/.png, report.json")
    un.set_defaults(run=_universal, steps=0)
    st = sub.add_parser("study", help="blinded perceptibility studies")
    st_sub = st.add_subparsers(dest="study_command", required=True)
    sc = st_sub.add_parser("create", help="build a study from original/adversarial pairs")
    sc.add_argument(
        "pairs",
        nargs="+",
        help="a folder of <case>_original / <case>_adversarial images, or workbench run folders",
    )
    sc.add_argument("--truth", default=None, help="runs: a .truth.json (default: the slide's)")
    sc.add_argument("--out", required=True, help="the study folder (manifest.json, images)")
    sc.add_argument(
        "--readers", nargs="+", required=True, help="the readers to enrol (each gets a code)"
    )
    sc.add_argument(
        "--key", default=None, help="where the key goes (default: OUT.key.json, beside OUT)"
    )
    sc.add_argument(
        "--replicates",
        type=_int_in(1, MAX_REPLICATES),
        default=None,
        help="presentations per image (2)",
    )
    sc.add_argument("--min-gap", type=POSITIVE, default=None, help="same image at least this apart")
    sc.add_argument("--seed", type=int, default=0, help="seed of the presentation order")
    sc.add_argument(
        "--questions",
        nargs="+",
        default=None,
        choices=("tumour", "confidence", "count", "altered"),
        help="what each reader answers (default: tumour, or the preset's)",
    )
    sc.add_argument("--preset", choices=("seed001",), default=None, help="seed 001's design")
    sc.add_argument(
        "--allow-corrections", action="store_true", help="readers may revise answered cases"
    )
    sc.add_argument(
        "--track-view", type=float, default=0.0, metavar="S", help="sample the camera every S s"
    )
    sc.set_defaults(run=_study_create)
    sa = st_sub.add_parser("analyze", help="unblind and analyse a study (needs the key)")
    sa.add_argument("study", help="the study folder")
    sa.add_argument("--key", required=True, help="the study's key (OUT.key.json)")
    sa.add_argument("--out", required=True, help="folder for answers.csv, summary.json, ...")
    sa.add_argument("--receipts", default=None, help="a file of the readers' receipts, one a line")
    sa.add_argument(
        "--allow-damaged",
        action="store_true",
        help="analyse the logs that verify and name the others (default: refuse)",
    )
    sa.set_defaults(run=_study_analyze)
    return parser


FOLDER_OUTS = {"attack", "sweep", "transfer", "universal", "tiles", "figures", "study"}
"""Commands whose ``--out`` is a folder."""


def _check_out(args: argparse.Namespace) -> None:
    """A folder output that is an existing file is refused before any work."""
    out = getattr(args, "out", None)
    if args.command in FOLDER_OUTS and out is not None:
        path = Path(out)
        if path.exists() and not path.is_dir():
            raise CpadvError(path, "--out names a folder to write into, and this is a file")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``cpadv`` console script; returns the exit status.

    Output piped into a reader that stops early (``cpadv info S | head -1``) ends quietly:
    a closed pipe is the reader's choice, not an error (Python's documented recipe: point
    stdout at devnull so that the interpreter's final flush does not fail again).
    """
    try:
        return _main(argv)
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


def _main(argv: Sequence[str] | None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # a bad argument (its one line printed) or --help
        return int(exc.code or 0)
    args.argv = None if argv is None else list(argv)

    def one_line(message: Warning | str, *_: object, **__: object) -> None:
        print(f"cpadv {args.command}: warning: {message}", file=sys.stderr)

    try:
        _check_out(args)
        with warnings.catch_warnings():
            warnings.simplefilter("always")  # printed, whatever filters the caller set
            warnings.showwarning = one_line  # a warning is one line, as errors are
            result = args.run(args)
    except CpadvError as exc:
        print(f"cpadv {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C: one line; every output is written whole or not at all
        out = getattr(args, "out", None)
        kept = f"; what was finished is kept in {out}" if out else ""
        print(f"\ncpadv {args.command}: interrupted{kept}", file=sys.stderr)
        return 130
    except OSError as exc:  # a read-only folder, a full disk: the file and the reason
        where = exc.filename or getattr(args, "out", None) or ""
        print(f"cpadv {args.command}: {where}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

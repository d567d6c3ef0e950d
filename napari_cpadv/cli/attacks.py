"""``cpadv attack, sweep, transfer, universal``: attacks on slides and tile sets."""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path
from typing import Any

from napari_cpadv.attacks import registry as attack_registry
from napari_cpadv.cli._common import (
    BUDGET_HELP,
    DETECTORS,
    DEVICE_HELP,
    NORM_HELP,
    POSITIVE,
    UNIT_HELP,
    WEIGHTS_HELP,
    _annotations,
    _attack_options,
    _budget,
    _cluster,
    _cluster_options,
    _device,
    _drive,
    _positive_float,
    _region,
    _region_options,
    _spec,
    _write_report,
    refused,
    trained_on,
)
from napari_cpadv.errors import CpadvError
from napari_cpadv.geometry import Box
from napari_cpadv.models.detector import Detector, with_output


def _attack(args: argparse.Namespace) -> dict[str, Any]:
    """The Attack dock's run (``workbench.attack.AttackModel.work``) on ``--region``,
    written to the run folder ``--out``: the same run, the same files."""
    from napari_cpadv.experiments.runs import RunFolder
    from napari_cpadv.experiments.tiles import tile_side
    from napari_cpadv.models.weights import resolve
    from napari_cpadv.slide import open_slide
    from napari_cpadv.workbench.attack import AttackModel

    slide = open_slide(args.slide)
    region = Box.from_xywh(*_region(args, slide))
    detector = resolve(args.detector, args.weights)
    with refused(None, "--tile: "):  # the tile first: a budget is judged on the tile it is for
        tile_side(detector, args.tile)
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
    run = RunFolder.at(args.out, resume=args.resume)
    origin = trained_on(args.detector, args.weights, slide, args.level, detector.output)
    with refused(args.slide):
        outcome = _drive(
            model.work(
                args.slide,
                box=region.rows_cols,
                run=run,
                annotations=annotations,
                detectors=detectors,
                detector=detector,
                cluster=_cluster(args),
                resume=args.resume,
            ),
            args.command,
        )
    report = outcome.report
    for line in ([report["note"]] if "note" in report else []) + report.get("warnings", []):
        warnings.warn(line, UserWarning, stacklevel=1)
    return {**_attack_summary(report, run.report_path), "trained_on": origin}


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
        **({"resumed": report["resumed"]} if "resumed" in report else {}),
        "warnings": report.get("warnings", []),
    }


def _region_tiles(args: argparse.Namespace, detector: Detector) -> Any:
    from napari_cpadv.experiments.tiles import region_tiles, tile_side
    from napari_cpadv.slide import open_slide

    slide = open_slide(args.slide)
    with refused(args.slide):
        return region_tiles(
            slide,
            args.level,
            _region(args, slide),
            tile_side(detector, args.tile),
            annotations=_annotations(args),
            cell=detector.cell,
        )


def _slide_report(args: argparse.Namespace, work: Any, name: str) -> dict[str, Any]:
    """Run a report generator over a slide's tiles; write ``OUT/name``; errors name the slide."""

    with refused(args.slide):
        report = _drive(
            work,
            args.command,
        )
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
        cluster=_cluster(args),
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
    work = transfer(
        detectors,
        tiles,
        specs,
        device=_device(args.device),
        batch=args.batch,
        cluster=_cluster(args),
    )
    return _slide_report(args, work, "transfer.json")


def _universal(args: argparse.Namespace) -> dict[str, Any]:
    import io

    import numpy as np
    from PIL import Image

    from napari_cpadv.experiments.universal_study import universal_study
    from napari_cpadv.files import write_atomic
    from napari_cpadv.models.data import load_tiles
    from napari_cpadv.models.weights import resolve

    args.attack, args.level, args.tile = "universal", 0, 0
    spec = _spec(args, args.budget)
    detector = resolve(args.detector, args.weights)
    with refused(None):
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


def _add_attack(sub: Any) -> None:
    at = sub.add_parser("attack", help="attack a region of a slide; write an adversarial slide")
    at.add_argument("slide", help="the slide to attack")
    at.add_argument("--detector", required=True, choices=DETECTORS, help="the detector to fool")
    at.add_argument("--weights", default=None, help=WEIGHTS_HELP)
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
    at.add_argument(
        "--resume",
        action="store_true",
        help="continue the stopped run in --out (same arguments): its finished tiles are "
        "kept, the rest attacked",
    )
    _cluster_options(at, what="attack the tiles (--batch a task)")
    at.set_defaults(run=_attack)


def _add_sweep(sub: Any) -> None:
    sw = sub.add_parser("sweep", help="one attack over a list of budgets: a success matrix")
    sw.add_argument("slide", help="the slide to attack")
    sw.add_argument("--detector", required=True, choices=DETECTORS, help="the detector to fool")
    sw.add_argument("--weights", default=None, help=WEIGHTS_HELP)
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
    _cluster_options(sw, what="attack the budgets (one a task)")
    sw.set_defaults(run=_sweep)


def _add_transfer(sub: Any) -> None:
    tr = sub.add_parser("transfer", help="craft on each detector, score on every detector")
    tr.add_argument("slide", help="the slide to attack")
    tr.add_argument(
        "--detectors",
        nargs="+",
        default=list(with_output("cells")),
        choices=with_output("cells"),
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
    _cluster_options(tr, what="attack each source (one a task)")
    tr.set_defaults(run=_transfer)


def _add_universal(sub: Any) -> None:
    un = sub.add_parser(
        "universal", help="learn one δ on `cpadv tiles` folders, score it on held-out ones"
    )
    un.add_argument("data", nargs="+", help="`cpadv tiles` folders to learn on")
    un.add_argument("--holdout", nargs="+", required=True, help="`cpadv tiles` folders")
    un.add_argument("--detector", required=True, choices=DETECTORS, help="the detector to fool")
    un.add_argument("--weights", default=None, help=WEIGHTS_HELP)
    un.add_argument("--norm", default="linf", choices=("l1", "l2", "linf", "none"), help=NORM_HELP)
    un.add_argument("--budget", type=_positive_float, default=8.0, help=BUDGET_HELP)
    un.add_argument("--unit", default="per_pixel", choices=("total", "per_pixel"), help=UNIT_HELP)
    un.add_argument("--epochs", type=POSITIVE, default=10, help="passes over the tiles")
    un.add_argument(
        "--batch",
        type=POSITIVE,
        default=1,
        help="tiles per SGD step (1: seed 001, δ updated after each)",
    )
    un.add_argument("--all-tiles", action="store_true", help="not only tumour tiles")
    un.add_argument("--seed", type=int, default=0, help="seed of the tile order")
    un.add_argument("--device", default=None, help=DEVICE_HELP)
    un.add_argument("--out", required=True, help="folder for universal.npy/.png, report.json")
    un.set_defaults(run=_universal, steps=0)


def add_parsers(sub: Any) -> None:
    """This group's commands."""
    _add_attack(sub)
    _add_sweep(sub)
    _add_transfer(sub)
    _add_universal(sub)

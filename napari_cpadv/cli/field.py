"""``cpadv train NAME --field`` and ``cpadv evaluate --held-out``: a cell detector trained
on one field of real tissue by spatial cross-validation (``experiments.spatial``), and the
stripe of the field its weights never saw, scored again from the weights."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from napari_cpadv.cli._common import _device, _drive, _ground_truth, refused
from napari_cpadv.cli.models import _hyper
from napari_cpadv.errors import CpadvError

if TYPE_CHECKING:
    from napari_cpadv.models.detector import Detector

CLASSIFIER_PATCH = 112
"""``--field`` with resnet18: patch side in level pixels. 112 pixels of the real field's
level 0 (0.5 µm per pixel) are 56 µm, the tissue of seed 001's 224-pixel patches at 40x
(0.25 µm) and of the painted patches' 224 at 0.243 µm."""


def _config(args: argparse.Namespace) -> dict[str, Any]:
    from napari_cpadv.models.weights import paths, shipped

    return json.loads(paths(args.weights or shipped(args.detector))[1].read_text())


def train_field(args: argparse.Namespace, schedule: Any, device: Any) -> dict[str, Any]:
    """``cpadv train NAME --field SLIDE --annotations ANN``: spatial cross-validation on one
    field of real tissue (``experiments.spatial``), every fold trained and scored on its
    held-out stripe beside the shipped detector; the weights kept are those of
    ``--held-out-fold``, whose stripe no training input reached, and their record holds
    the stripe (``cpadv evaluate --held-out`` scores it) and every fold's score."""
    from napari_cpadv.experiments.spatial import Field, crossvalidate, fitter
    from napari_cpadv.models import weights
    from napari_cpadv.slide import open_slide

    plan = _plan(args)
    with refused(args.field):
        slide = open_slide(args.field)
        if not 0 <= plan["level"] < len(slide.geometry):
            raise CpadvError(
                args.field, f"--level {plan['level']}: the slide has {len(slide.geometry)}"
            )
        field = Field(slide, plan["level"], _ground_truth(args.annotations[0]), plan["truth"])
    extra = _unlabelled(args, slide, plan)
    with refused(args.field):
        kept: dict[int, Any] = {}
        train = fitter(
            args.detector, field, kept=kept, hyper=plan["hyper"], schedule=schedule,
            seed=args.seed, device=device, **extra,
        )  # fmt: skip
        cv = crossvalidate(
            train, field, gap=plan["gap"], k=args.folds, side=plan["side"],
            stride=plan["stride"], reference=weights.resolve(args.detector, None),
            device=device, cell=plan["cell"],
        )  # fmt: skip
        try:
            report = _drive(cv, args.command)
        except ValueError as e:
            raise CpadvError(args.field, str(e)) from e
    detector, record = kept[plan["held"]]
    argv = sys.argv[1:] if args.argv is None else args.argv
    tiles = {"tile": plan["side"], "tile_stride": plan["stride"], "cell": plan["cell"]}
    record["training"].update(
        command="cpadv " + " ".join(argv),
        device=str(device),
        spatial=_stripe(args, slide, plan["level"], plan["held"], plan["gap"], report, **tiles),
    )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    out = weights.save(detector, args.out, **record)
    return {"weights": str(out), "detector": args.detector, **record}


def _unlabelled(args: argparse.Namespace, slide: Any, plan: dict[str, Any]) -> dict[str, Any]:
    """``--unlabelled``'s tiles at the field's microns per pixel, for ``fitter``; refused
    for the field itself (its test stripe would reach training) and for the held-out
    samples (``sample_data/heldout``: only to test)."""
    from napari_cpadv.experiments.spatial import unlabelled_tiles
    from napari_cpadv.models.data import TileSet
    from napari_cpadv.models.weights import sha256
    from napari_cpadv.slide.synthetic import SAMPLE_DATA

    if not args.unlabelled:
        return {}
    um = max(slide.level_scale(plan["level"]) or (0.0,))
    if not um:
        raise CpadvError(args.field, "states no microns per pixel: --unlabelled needs it")
    field_sha = sha256(Path(args.field))
    tiles: list[TileSet] = []
    data: list[str] = []
    for path in map(Path, args.unlabelled):
        with refused(path):
            if path.resolve().is_relative_to((SAMPLE_DATA / "heldout").resolve()):
                raise CpadvError(path, "is held out (sample_data/heldout): only to test")
            sha = sha256(path)  # once a file: it names the file in the record too
            if sha == field_sha:
                raise CpadvError(
                    path, "is the field itself: its test stripe would reach the training"
                )
            tiles.append(unlabelled_tiles(path, um, plan["side"]))
            data.append(f"{path.name} (sha256 {sha})")
    joined = tiles[0]
    for more in tiles[1:]:
        joined = joined.joined(more)
    return {"unlabelled": joined, "unlabelled_data": data}


def _plan(args: argparse.Namespace) -> dict[str, Any]:
    """What ``--field`` trains on, checked before any slide is read: the level, the tiles
    (their side, spacing and the stripes' unit), the gap, the fold kept and, for a patch
    classifier, the nuclei it counts."""
    from napari_cpadv.models.detector import make, registry

    if args.data or args.slides:
        raise CpadvError(None, "--field trains on one slide: give no tile folders or --slides")
    if not args.annotations or len(args.annotations) != 1:
        raise CpadvError(args.field, "--field needs its ground truth: --annotations ANN")
    classifier = getattr(registry()[args.detector], "output", "cells") == "classes"
    if args.unlabelled and classifier:
        raise CpadvError(
            args.field, f"--unlabelled: {args.detector} has no unsupervised phase to use them"
        )
    if classifier and (not args.truth or len(args.truth) != 1):
        raise CpadvError(
            args.field,
            f"--field with {args.detector} counts nuclei (seed 001's rule): --truth TRUTH.json",
        )
    k = args.folds
    held = k - 1 if args.held_out_fold is None else args.held_out_fold
    if not 0 <= held < k:
        raise CpadvError(args.field, f"--held-out-fold {held}: the folds are 0 to {k - 1}")
    side = args.tile or (CLASSIFIER_PATCH if classifier else 64)
    hyper = {**_hyper(args), **({"patch": side} if classifier else {})}
    margin = make(args.detector, **hyper).margin  # the one to be trained
    gap = margin if args.gap is None else args.gap
    if gap < 0:
        raise CpadvError(args.field, f"--gap {gap}: a gap is at least 0 pixels")
    if gap < margin:
        raise CpadvError(
            args.field,
            f"--gap {gap} is less than the {args.detector}'s receptive field ({margin} "
            "pixels): test pixels would reach training inputs",
        )
    return {
        # the cell detectors at 1.0 µm per pixel (the painted slides' level 2); the
        # classifier's patches at the field's own resolution (CLASSIFIER_PATCH)
        "level": (0 if classifier else 1) if args.level is None else args.level,
        "truth": args.truth[0] if classifier else None,
        "held": held,
        "side": side,
        "hyper": hyper,
        "gap": gap,
        "stride": args.tile_stride or (side // 2 if classifier else 32),
        "cell": side if classifier else 4,  # stripes of whole patches, or of whole cells
    }


def _stripe(
    args: argparse.Namespace,
    slide: Any,
    level: int,
    held: int,
    gap: int,
    report: dict[str, Any],
    **tiles: int,
) -> dict[str, Any]:
    """The record of a ``--field`` training: the field, the stripe kept from the weights
    (level columns and the level-0 rectangle), and every fold's score."""
    from napari_cpadv.experiments.spatial import folds
    from napari_cpadv.models.weights import sha256

    cols = slide.geometry[level].cols
    fold = folds(cols, args.folds, gap, cell=tiles["cell"])[held]  # as crossvalidate cut
    ds = float(slide.downsamples[level])
    x0, x1 = round(fold.c0 * ds), round(fold.c1 * ds)
    return {
        "field": Path(args.field).name,
        "field_sha256": sha256(Path(args.field)),
        "annotations": Path(args.annotations[0]).name,
        **({"truth": Path(args.truth[0]).name} if args.truth else {}),
        "level": level,
        "folds": args.folds,
        "held_out_fold": held,
        "held_out_columns": [fold.c0, fold.c1],
        "held_out_region": [x0, 0, x1 - x0, int(slide.geometry[0].rows)],
        "gap": gap,
        **tiles,
        "crossvalidation": report,
        "reference": f"the shipped {args.detector} (painted slides), same stripes",
    }


def held_out(
    args: argparse.Namespace,
    detector: Detector,
    slide: Any,
    annotations: Any,
    truth: str | Path | None = None,
) -> dict[str, Any]:
    """AUC-PR on the stripe of a field that weights trained by ``cpadv train --field`` never
    saw (their record names it), beside the shipped detector and the null model."""
    from napari_cpadv.experiments.spatial import Field, Fold, score_fold
    from napari_cpadv.models.weights import resolve, sha256

    config = _config(args)
    spatial = config.get("training", {}).get("spatial")
    if not spatial:
        raise CpadvError(
            args.weights or args.detector,
            "--held-out: these weights were not trained by `cpadv train --field`",
        )
    if sha256(Path(args.slide)) != spatial["field_sha256"]:
        raise CpadvError(
            args.slide,
            f"--held-out: not the field these weights were trained on ({spatial['field']})",
        )
    level = spatial["level"]
    c0, c1 = spatial["held_out_columns"]
    fold = Fold(spatial["held_out_fold"], c0, c1, spatial["gap"], slide.geometry[level].cols)
    field = Field(slide, level, annotations, None if truth is None else str(truth))
    device = _device(args.device)
    patch = spatial.get("tile")  # a classifier's patches: the side it was trained and scored on
    with refused(args.slide):
        row = _drive(score_fold(detector, field, fold, device=device, patch=patch), args.command)
        shipped = resolve(args.detector, None)
        ref = _drive(score_fold(shipped, field, fold, device=device, patch=patch), "")
    metric = "aucroc" if detector.output == "classes" else "aucpr"
    return {
        **row,
        "level": level,
        "held_out_region": spatial["held_out_region"],
        f"shipped_{metric}": ref.get(metric),
        f"crossvalidation_{metric}": spatial["crossvalidation"].get(metric),
        "truth": "a segmentation model's nuclei curated by their authors, not a pathologist's",
    }

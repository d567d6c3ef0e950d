"""``cpadv train, evaluate, heatmap, figures``: the detectors, their weights and maps."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from napari_cpadv.cli._common import (
    DETECTORS,
    DEVICE_HELP,
    POSITIVE,
    SCOPE_HELP,
    SPARSE_HELP,
    WEIGHTS_HELP,
    _device,
    _drive,
    _ground_truth,
    refused,
    trained_on,
)
from napari_cpadv.errors import CpadvError


def _hyper(args: argparse.Namespace) -> dict[str, Any]:
    keys = ("atoms", "size", "stride", "lam", "tau", "iterations", "tol", "width")
    return {k: getattr(args, k) for k in keys if getattr(args, k, None) is not None}


def _train(args: argparse.Namespace) -> dict[str, Any]:
    from napari_cpadv.models import weights
    from napari_cpadv.models.fit import Schedule, fit

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
        loader_workers=args.loader_workers,
    )
    if args.field:
        from napari_cpadv.cli.field import train_field

        return train_field(args, schedule, device)
    if args.unlabelled:
        raise CpadvError(None, "--unlabelled joins a --field training: give --field SLIDE")
    streamed = _streamed(args)
    with refused(args.data[0] if args.data else args.slides[0]):
        detector, record = _drive(
            fit(
                args.detector,
                args.data,
                hyper=_hyper(args),
                schedule=schedule,
                holdout=args.holdout or (),
                seed=args.seed,
                device=device,
                streamed=streamed,
            ),
            args.command,
        )
    argv = sys.argv[1:] if args.argv is None else args.argv
    record["training"]["command"] = "cpadv " + " ".join(argv)
    record["training"]["device"] = str(device)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    out = weights.save(detector, args.out, **record)
    return {"weights": str(out), "detector": args.detector, **record}


def _sources(slides: list[str], annotations: list[str] | None, truth: list[str] | None) -> Any:
    from napari_cpadv.annotations.stream import SlideData

    for flag, given in (("--annotations", annotations), ("--truth", truth)):
        if given is not None and len(given) != len(slides):
            raise CpadvError(None, f"{flag}: one per slide ({len(given)} for {len(slides)})")
    return [
        SlideData(s, annotations[k] if annotations else None, truth[k] if truth else None)
        for k, s in enumerate(slides)
    ]


def _streamed(args: argparse.Namespace) -> Any:
    """Tiles streamed from ``--slides`` (indexed now, read while training), or ``None``
    for ``cpadv tiles`` folders; exactly one of the two is given."""
    from napari_cpadv.models.data import stream_tiles
    from napari_cpadv.models.fit import Streamed

    if bool(args.data) == bool(args.slides):
        raise CpadvError(None, "give `cpadv tiles` folders or --slides, one of the two")
    if not args.slides:
        return None
    if args.level is None or args.tile is None:
        raise CpadvError(args.slides[0], "--slides needs --level and --tile (the tiles to cut)")
    cut = {"level": args.level, "size": args.tile}
    with refused(args.slides[0]):
        found = _sources(args.slides, args.annotations, args.truth)
        tiles = _drive(stream_tiles(found, **cut), "train (index)")
        held = None
        if args.holdout_slides:
            found = _sources(args.holdout_slides, args.holdout_annotations, args.holdout_truth)
            held = _drive(stream_tiles(found, **cut), "train (index)")
    return Streamed(tiles, list(args.slides), args.level, held, args.holdout_slides)


def _evaluate(args: argparse.Namespace) -> dict[str, Any]:
    from napari_cpadv.inference.evaluate import evaluate
    from napari_cpadv.models.weights import resolve
    from napari_cpadv.slide import open_slide

    slide = open_slide(args.slide)
    detector = resolve(args.detector, args.weights)
    ann = Path(args.annotations)
    truth = args.truth
    if ann.name.endswith(".truth.json"):  # its tumour regions, and its nuclei
        from napari_cpadv.annotations.dataset import read_truth_tumours

        truth, annotations = truth or ann, read_truth_tumours(ann)
    else:
        annotations = _ground_truth(ann)
    guess = Path(args.slide).with_suffix(".truth.json")  # the nuclei, beside the slide
    if truth is None and guess.is_file():
        truth = guess
    if detector.output == "classes" and truth is None:
        raise CpadvError(args.slide, "resnet18 is scored on nuclei: give --truth TRUTH.json")
    level = 0 if args.level is None and detector.output == "classes" else args.level
    if level is None:
        level = int(json.loads(_weights_config(args).read_text())["training"].get("level", 2))
    origin = trained_on(args.detector, args.weights, slide, level, detector.output)
    if args.held_out:
        from napari_cpadv.cli.field import held_out

        return {**held_out(args, detector, slide, annotations, truth), "trained_on": origin}
    with refused(args.slide):
        scores = _drive(
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
    return {**scores, "trained_on": origin}


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
    from napari_cpadv.models.weights import architecture_of
    from napari_cpadv.slide import open_slide

    output = architecture_of(args.detector, args.weights).output
    with refused(args.slides[0]):
        origins = [  # a warning for each slide far from what the weights learnt from
            trained_on(args.detector, args.weights, open_slide(s), args.level, output)
            for s in args.slides
        ]
        origin = origins[0]  # one detector: the same words for every slide
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
    return {
        "heatmaps": [str(p) for p in written],
        "detector": args.detector,
        "level": args.level,
        "trained_on": origin,
    }


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


def _add_train(sub: Any) -> None:
    train = sub.add_parser("train", help="train a detector on `cpadv tiles` folders")
    train.add_argument("detector", choices=DETECTORS, help="what to train")
    train.add_argument("data", nargs="*", help="`cpadv tiles` folders (or --slides)")
    train.add_argument(
        "--slides", nargs="+", default=None, help="slides to stream tiles from (no PNG files)"
    )
    train.add_argument("--annotations", nargs="+", default=None, help="--slides' annotations")
    train.add_argument(
        "--truth", nargs="+", default=None, help="--slides' (or --field's) nuclei: .truth.json"
    )
    train.add_argument(
        "--level", type=int, default=None, help="--slides, --field: the level to cut"
    )
    train.add_argument(
        "--tile",
        type=POSITIVE,
        default=None,
        help="--slides, --field: tile side, pixels (--field: 64; resnet18: its patch, 112)",
    )
    train.add_argument("--holdout-slides", nargs="+", default=None, help="slides to score on")
    train.add_argument("--holdout-annotations", nargs="+", default=None, help="their annotations")
    train.add_argument("--holdout-truth", nargs="+", default=None, help="their synthetic truth")
    train.add_argument(
        "--loader-workers", type=int, default=0, help="--slides: processes reading ahead (0)"
    )
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
    add_field_arguments(train)
    train.set_defaults(run=_train)


def add_field_arguments(train: Any) -> None:
    """``cpadv train``'s options for one real field (``cli.field``)."""
    train.add_argument(
        "--field",
        default=None,
        help="one real slide (with --annotations; resnet18 also --truth) to train on by "
        "spatial cross-validation",
    )
    train.add_argument(
        "--folds", type=int, default=3, help="--field: vertical stripes, one a fold (3)"
    )
    train.add_argument(
        "--held-out-fold",
        type=int,
        default=None,
        help="--field: the fold whose weights are kept, its stripe never trained on (last)",
    )
    train.add_argument(
        "--gap",
        type=int,
        default=None,
        help="--field: level pixels between training tiles and the test stripe "
        "(default: the detector's receptive field)",
    )
    train.add_argument(
        "--tile-stride",
        type=POSITIVE,
        default=None,
        help="--field: tile spacing, pixels (32; resnet18: half a patch)",
    )
    train.add_argument(
        "--unlabelled",
        nargs="+",
        default=None,
        metavar="SLIDE",
        help="--field, dae and sparse: more real slides (regions) whose tissue joins the "
        "autoencoder's or the dictionary's unsupervised phase only, at the field's "
        "microns per pixel",
    )


def _add_evaluate(sub: Any) -> None:
    ev = sub.add_parser("evaluate", help="score a detector on a slide with known truth")
    ev.add_argument("slide", help="the slide to score on")
    ev.add_argument("annotations", help="ASAP .xml / QuPath .geojson, or a synthetic .truth.json")
    ev.add_argument("--detector", required=True, choices=DETECTORS, help="what to score")
    ev.add_argument("--weights", default=None, help=WEIGHTS_HELP)
    ev.add_argument("--level", type=int, default=None, help="default: the level trained at")
    ev.add_argument(
        "--truth",
        default=None,
        help="the nuclei, .truth.json: resnet18's labels and each detector's share "
        "of nuclei called tumour (default: SLIDE.truth.json when there)",
    )
    ev.add_argument("--scope", choices=("tissue", "slide"), default="tissue", help=SCOPE_HELP)
    ev.add_argument(
        "--held-out",
        action="store_true",
        help="score only the stripe `cpadv train --field` kept from these weights",
    )
    ev.add_argument("--device", default=None, help=DEVICE_HELP)
    ev.set_defaults(run=_evaluate)


def _add_heatmap(sub: Any) -> None:
    hm = sub.add_parser("heatmap", help="heatmap pyramids of slides, on dask.distributed")
    hm.add_argument("slides", nargs="+", help="slides to run the detector over")
    hm.add_argument("--detector", required=True, choices=DETECTORS, help="what to run")
    hm.add_argument("--weights", default=None, help=WEIGHTS_HELP)
    hm.add_argument("--level", type=int, required=True, help="slide level to compute at")
    hm.add_argument("--out", required=True, help="HEATMAP.zarr, or a folder for several slides")
    hm.add_argument("--scope", choices=("tissue", "slide"), default="tissue", help=SCOPE_HELP)
    hm.add_argument("--scheduler", default=None, help="address of a running dask scheduler")
    hm.add_argument("--workers", type=POSITIVE, default=2, help="LocalCluster worker processes")
    hm.add_argument("--threads", type=int, default=1, help="torch threads per worker")
    hm.add_argument("--device", default=None, help=DEVICE_HELP)
    hm.set_defaults(run=_heatmap)


def _add_figures(sub: Any) -> None:
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


def add_parsers(sub: Any) -> None:
    """This group's commands."""
    _add_train(sub)
    _add_evaluate(sub)
    _add_heatmap(sub)
    _add_figures(sub)

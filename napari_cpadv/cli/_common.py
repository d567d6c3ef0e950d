"""What the command groups share: argparse's error form and types, option groups, help
texts, and the steps every command takes (driving a generator with a bar, the device,
budgets and specs, regions, annotations, reports)."""

from __future__ import annotations

import argparse
import math
import sys
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

from napari_cpadv.errors import CpadvError
from napari_cpadv.geometry import Box
from napari_cpadv.models.detector import NAMES


@contextmanager
def refused(where: Any = None, prefix: str = "") -> Iterator[None]:
    """A ``ValueError`` (bad input, by the core's convention) inside the block becomes the
    command's one-line ``CpadvError``, naming ``where`` (a file) and the ``prefix`` (the
    option at fault)."""
    try:
        yield
    except ValueError as exc:
        raise CpadvError(where, f"{prefix}{exc}") from exc


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


def _device(name: str | None) -> Any:
    from napari_cpadv.device import pick_device

    with refused(None):
        return pick_device(name)


def _budget(args: argparse.Namespace, value: float) -> Any:
    from napari_cpadv.attacks.projections import Budget

    with refused(None, "--budget: "):
        return Budget(args.norm, value, args.unit)


def _spec(args: argparse.Namespace, value: float) -> Any:
    from napari_cpadv.attacks.base import AttackSpec

    with refused(None):
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


def _slide_at(args: argparse.Namespace) -> Any:
    """``args.slide`` opened, once ``args.level`` is known to be one of its levels."""
    from napari_cpadv.slide import open_slide

    slide = open_slide(args.slide)
    if not 0 <= args.level < len(slide.levels):
        raise CpadvError(args.slide, f"level {args.level} not in 0..{len(slide.levels) - 1}")
    return slide


def _region(args: argparse.Namespace, slide: Any) -> tuple[int, int, int, int]:
    g0 = slide.geometry[0]
    if not args.region:
        return (0, 0, g0.cols, g0.rows)
    x, y, w, h = args.region
    if w <= 0 or h <= 0:
        raise CpadvError(args.slide, f"--region width and height must be positive, got {w} {h}")
    if not Box.from_xywh(x, y, w, h).overlaps(g0.rows, g0.cols):
        raise CpadvError(
            args.slide, f"--region {x} {y} {w} {h} lies outside the slide ({g0.cols} x {g0.rows})"
        )
    return (x, y, w, h)


def _annotations(args: argparse.Namespace) -> Any:
    """The ground truth of ``--annotations``, saying what a mask of it leaves out."""
    return _ground_truth(args.annotations) if args.annotations else None


def trained_on(name: str, weights: str | None, slide: Any, level: int, output: str) -> str:
    """What ``name``'s weights learnt from, in words, for the command's JSON; a one-line
    warning on stderr when ``slide``'s ``level`` is far from it (real tissue for painted
    training slides, cells at another size: ``inference.detect.resolution_warning``)."""
    from napari_cpadv.inference.detect import resolution_warning
    from napari_cpadv.models.origin import training_origin, words
    from napari_cpadv.models.weights import read_config, shipped

    far = resolution_warning(name, weights, slide, level, output)
    if far:
        warnings.warn(f"{slide.path}: {far}", UserWarning, stacklevel=2)
    return words(training_origin(read_config(weights or shipped(name))))


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


DETECTORS = NAMES  # the detector registry's names


WEIGHTS_HELP = (
    "a .safetensors file, or a shipped name: DETECTOR-he (trained on real H&E) or DETECTOR "
    "(painted slides); default: the shipped painted-slide weights"
)


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


def _cluster_options(p: argparse.ArgumentParser, *, what: str) -> None:
    """Where ``what`` (a phrase: "attack the tiles") runs: this process, a LocalCluster, or
    a running scheduler."""
    p.add_argument(
        "--workers",
        type=POSITIVE,
        default=None,
        help=f"{what} on a dask LocalCluster of this many worker processes "
        "(default: in this process)",
    )
    p.add_argument(
        "--scheduler",
        default=None,
        metavar="ADDR",
        help=f"{what} on the workers of this running dask scheduler "
        "(tcp://host:8786); every worker must read the files at the same paths",
    )
    p.add_argument(
        "--threads", type=POSITIVE, default=1, help="torch threads per LocalCluster worker"
    )


def _cluster(args: argparse.Namespace) -> Any:
    """The ``Cluster`` of ``--workers``/``--scheduler``, or ``None`` (this process)."""
    from napari_cpadv.inference.cluster import Cluster

    if args.scheduler is None and args.workers is None:
        return None
    return Cluster(args.scheduler, args.workers or 1, args.threads, args.device)


def _region_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--region", type=int, nargs=4, metavar=("X", "Y", "W", "H"), help="level-0 pixels"
    )
    p.add_argument(
        "--level", type=int, default=2, help="slide level to attack at (0: full resolution)"
    )
    p.add_argument("--tile", type=POSITIVE, default=512, help="attacked tile side, level pixels")
    p.add_argument("--annotations", default=None, help="ground truth (ASAP XML, GeoJSON)")


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

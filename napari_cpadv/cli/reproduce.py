"""``cpadv reproduce``: every table and figure of the two papers into one report."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from napari_cpadv.cli._common import (
    DEVICE_HELP,
    _cluster,
    _cluster_options,
    _device,
    _drive,
    refused,
)
from napari_cpadv.errors import CpadvError

WEIGHT_NAMES = ("dae", "sparse", "resnet18")


def _weights(items: list[str] | None) -> dict[str, str]:
    """``NAME=PATH`` pairs; a name that is no detector, or a missing file, is refused."""
    from pathlib import Path

    out: dict[str, str] = {}
    for item in items or []:
        name, sep, path = item.partition("=")
        if not sep or name not in WEIGHT_NAMES:
            raise CpadvError(
                None, f"--weights {item!r}: give NAME=PATH, NAME one of {', '.join(WEIGHT_NAMES)}"
            )
        if not Path(path).is_file():
            raise CpadvError(path, "--weights: no such weights file")
        out[name] = path
    return out


def _reproduce(args: argparse.Namespace) -> dict[str, Any]:
    from napari_cpadv.reproduce.run import reproduce

    papers: tuple[str, ...] = ()
    for paper in args.paper:  # in the order the report reads: the papers, then real tissue
        papers += ("seed000", "seed001") if paper == "all" else (paper,)
    papers = tuple(p for p in ("seed000", "seed001", "real") if p in papers)
    data = None if args.data in (None, ["synthetic"]) else args.data
    argv = sys.argv[1:] if args.argv is None else args.argv
    with refused(args.out):
        return _drive(
            reproduce(
                papers,
                args.out,
                data=data,
                scale="quick" if args.quick else "tiny" if args.tiny else "full",
                device=_device(args.device),
                weights=_weights(args.weights),
                seed=args.seed,
                command="cpadv " + " ".join(argv),
                cluster=_cluster(args),
                only=args.only,
            ),
            args.command,
        )


def add_parsers(sub: Any) -> None:
    """This group's command."""
    rp = sub.add_parser(
        "reproduce",
        help="both papers' tables and figures, beside their published numbers",
        description="Train what is needed, run every experiment of the paper(s) and write "
        "OUT/report.html, OUT/results.json and the figures (PNG, SVG). Finished steps are "
        "kept: run the same command again to resume.",
    )
    rp.add_argument(
        "paper",
        nargs="+",
        choices=("seed000", "seed001", "all", "real"),
        help="which paper (all: both); real: both papers' attacks on the real carcinoma "
        "field's held-out stripes with the committed *-he weights, beside the painted slides' "
        "numbers when this folder holds them (`all real`)",
    )
    rp.add_argument("--out", required=True, help="the reproduction folder (resumable)")
    rp.add_argument(
        "--data",
        nargs="+",
        default=None,
        metavar="synthetic|PATH",
        help="synthetic (default: painted with known truth), or a Camelyon16 folder (seed 000) "
        "and/or a PanNuke folder (seed 001)",
    )
    scale = rp.add_mutually_exclusive_group()
    scale.add_argument("--quick", action="store_true", help="small sizes: minutes on 2 CPU cores")
    scale.add_argument(
        "--tiny",
        action="store_true",
        help="toy sizes, seconds on 2 CPU cores: a smoke test of every step, no result",
    )
    rp.add_argument(
        "--only",
        nargs="+",
        default=None,
        metavar="STEP",
        help="run only these steps (e.g. seed001/fig4) and the steps they read; the others "
        "are kept where they finished before, else reported as not yet run",
    )
    rp.add_argument("--device", default=None, help=DEVICE_HELP)
    rp.add_argument(
        "--weights",
        nargs="+",
        default=None,
        metavar="NAME=PATH",
        help="use these weights instead of training (dae, sparse, resnet18)",
    )
    rp.add_argument("--seed", type=int, default=0, help="seed of every random choice")
    _cluster_options(rp, what="run the independent parts (Table 1a's folds, Fig. 10's attacks)")
    rp.set_defaults(run=_reproduce)

"""``cpadv study create, analyze``: blinded perceptibility studies."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from napari_cpadv.cli._common import (
    MAX_REPLICATES,
    POSITIVE,
    _int_in,
)


def _study_create(args: argparse.Namespace) -> dict[str, Any]:
    from napari_cpadv.study.build import build_study
    from napari_cpadv.study.model import PRESETS, default_key_path, manifest_hash, reader_codes
    from napari_cpadv.study.pairs import pairs_from

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
        strict=args.strict,
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


def _add_study(sub: Any) -> None:
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
        "--strict",
        action="store_true",
        help="refuse pairs a reader would see differ (PSNR below 30 dB) instead of warning",
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


def add_parsers(sub: Any) -> None:
    """This group's commands."""
    _add_study(sub)

"""Issue 28, items 4-5, first measurement: the DAE trained on real tissue, scored on what
it never saw, beside the shipped (synthetic-trained) DAE on the same cells.

The carcinoma field (sample_data/hgsc_nest.tif) at level 1 (1.0 µm per pixel, the
resolution seed 000 tiled Camelyon16 at) is cut into three vertical stripes; each fold
trains a fresh DAE (autoencoder, then cell head) on 64-pixel tiles at least the DAE's
receptive field (32 pixels) away from its test stripe, and scores cell-level AUC-PR on the
stripe against the neoplastic nuclei (``experiments.spatial``). The shipped DAE is scored
on the same stripes. On the held-out stromal field (a negative control: 5 neoplastic nuclei
of 423) it reports the share of the non-neoplastic nuclei each detector calls tumour
(the cell under each nucleus' centroid, probability > 0.5): never trained or tuned on.
As `make weights-he` trains ``dae-he``, the CMU-1 region's tissue (no labels, at the
field's 1.0 µm per pixel) joins each fold's autoencoder phase (``--no-unlabelled``: not).

Usage: ``python benchmarks/bench_real_folds.py [--ae-epochs 8 --head-epochs 60]``.
"""

from __future__ import annotations

import argparse
import json
import sys

from _timing import run_header

from napari_cpadv.annotations import read_annotations
from napari_cpadv.experiments.spatial import Field, crossvalidate, fitter, unlabelled_tiles
from napari_cpadv.inference.evaluate import nuclei_called
from napari_cpadv.inference.heatmap import heatmap
from napari_cpadv.models.fit import Schedule
from napari_cpadv.models.weights import resolve
from napari_cpadv.progress import drive
from napari_cpadv.slide import open_slide
from napari_cpadv.slide.synthetic import SAMPLE_DATA

LEVEL = 1


def stromal_calls(detector, trained: list) -> dict:
    """Share of the held-out stromal field's non-neoplastic nuclei called tumour
    (``inference.evaluate.nuclei_called``, what ``cpadv evaluate`` reports)."""
    path = SAMPLE_DATA / "heldout" / "hgsc_stromal.tif"
    slide = open_slide(path)
    out = {}
    for name, det in [("shipped", detector), *trained]:
        hm = drive(heatmap(det, slide, level=LEVEL, scope="slide"))
        other = nuclei_called(hm, slide, LEVEL, path.with_suffix(".truth.json"))["other"]
        out[name] = {
            "non_neoplastic_called_tumour": other["called_tumour"],
            "nuclei": other["nuclei"],
        }
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ae-epochs", type=int, default=8)
    ap.add_argument("--head-epochs", type=int, default=60)
    ap.add_argument("--stride", type=int, default=32)
    ap.add_argument("--no-unlabelled", action="store_true", help="the field's tiles only")
    args = ap.parse_args(argv)
    cmu = SAMPLE_DATA / "cmu_small_region.svs"
    extra = {} if args.no_unlabelled else {"unlabelled": unlabelled_tiles(cmu, 1.0, 64)}
    path = SAMPLE_DATA / "hgsc_nest.tif"
    field = Field(open_slide(path), LEVEL, read_annotations(path.with_suffix(".geojson")))
    shipped = resolve("dae", None)
    schedule = Schedule(autoencoder=args.ae_epochs, head=args.head_epochs, head_lr=3e-3)
    trained: list = []

    def train(tiles, fold):
        det = yield from fitter("dae", field, schedule=schedule, seed=0, **extra)(tiles, fold)
        trained.append((f"fold {fold.index}", det))
        return det

    report = drive(
        crossvalidate(train, field, gap=shipped.margin, k=3, stride=args.stride, reference=shipped)
    )
    report["stromal_field"] = stromal_calls(shipped, trained)
    unlabelled = "no unlabelled tiles" if args.no_unlabelled else f"{cmu.name} unlabelled"
    header = run_header(
        scale=f"level {LEVEL}, 3 folds, ae {args.ae_epochs}, head {args.head_epochs}, {unlabelled}"
    )
    print(json.dumps({**header, **report}, indent=1, default=float))


if __name__ == "__main__":
    main(sys.argv[1:])

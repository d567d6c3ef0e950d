"""`cpadv attack` on a small slide: an adversarial slide and an honest report."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from napari_cpadv.annotations import Annotation, write_annotations
from napari_cpadv.cli import main
from napari_cpadv.models import weights
from napari_cpadv.models.detector import make
from napari_cpadv.slide import open_slide
from napari_cpadv.slide.delta import open_delta


@pytest.fixture(scope="module")
def dae_weights(tmp_path_factory):
    torch.manual_seed(0)
    return str(weights.save(make("dae"), tmp_path_factory.mktemp("w") / "dae"))


def fgsm_args(slide, weights_path, budget):
    return ["attack", str(slide), "--detector", "dae", "--weights", weights_path,
            "--attack", "fgsm", "--budget", budget]  # fmt: skip


def test_cli_attack_writes_the_delta_slide_and_a_report(small_slide, dae_weights, tmp_path, capsys):
    anns = [Annotation(p.exterior, p.holes, cls="Tumor") for p in small_slide.tumours]
    xml = write_annotations(anns, tmp_path / "truth.xml")
    extra = ["--steps", "3", "--level", "1", "--tile", "64", "--region", "0", "0", "512", "256",
             "--annotations", str(xml), "--out", str(tmp_path / "out")]  # fmt: skip
    code = main(fgsm_args(small_slide.path, dae_weights, "2.0") + extra)
    assert code == 0
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    printed = capsys.readouterr().out
    summary = json.loads(printed)  # a short summary, not the report's PR curves
    assert len(printed.splitlines()) < 60 and "recall" not in printed and "curve" not in printed
    assert summary["report"] == str(tmp_path / "out" / "report.json")
    assert summary["tiles"] == report["tiles"] and summary["success_rate"] == report["success_rate"]
    clean = report["aucpr"]["dae"]["clean"]
    assert summary["aucpr"]["dae"]["clean"] == (clean or {}).get("aucpr")
    assert report["tiles"] == 4 * 2 and report["attack"] == "fgsm"
    # rounding to 8 bits moves each value by at most half a grey level
    bound = 0.5 / 255 * (3 * 64 * 64) ** 0.5
    assert all(abs(v - 2.0) <= bound for v in report["norms"]["l2_total"])
    assert set(report["norms"]) >= {"l2_total", "l2_rms", "linf_255", "l1_mad", "l0_fraction"}
    assert "clean" in report["aucpr"]["dae"] or report["aucpr"]["dae"] is None
    original, adversarial = open_slide(small_slide.path), open_delta(report["delta"])
    a = original.read_region(1, 0, 0, 128, 256)
    b = adversarial.read_region(1, 0, 0, 128, 256)
    assert (a != b).any() and np.abs(a.astype(int) - b).max() <= 255
    np.testing.assert_array_equal(
        original.read_region(1, 300, 400, 64, 64), adversarial.read_region(1, 300, 400, 64, 64)
    )


def test_cli_attack_refuses_a_budget_of_the_wrong_sign(small_slide, dae_weights, tmp_path, capsys):
    code = main([*fgsm_args(small_slide.path, dae_weights, "-1"), "--out", str(tmp_path)])
    assert code == 2 and "--budget: -1 must be a finite number > 0" in capsys.readouterr().err


def test_an_off_grid_rectangle_around_a_tumour_is_attacked_where_it_is(
    small_slide, tmp_path, capsys
):
    """As a user draws it: a rectangle around the tumour, not on the tile grid."""
    from pathlib import Path

    shipped = Path(__file__).resolve().parents[2] / "sample_data" / "weights" / "dae.safetensors"
    anns = [Annotation(p.exterior, p.holes, cls="Tumor") for p in small_slide.tumours]
    xml = write_annotations(anns, tmp_path / "truth.xml")
    x0, y0, x1, y1 = (int(v) for v in anns[0].bbox)
    x, y, w, h = x0 - 37, y0 - 53, x1 - x0 + 75, y1 - y0 + 91  # off the 128-pixel grid
    args = ["attack", str(small_slide.path), "--detector", "dae", "--weights", str(shipped),
            "--attack", "fgsm", "--budget", "0.03", "--unit", "per_pixel", "--steps", "5",
            "--level", "1", "--tile", "64", "--region", str(x), str(y), str(w), str(h),
            "--annotations", str(xml), "--out", str(tmp_path / "out")]  # fmt: skip
    assert main(args) == 0
    out = capsys.readouterr()
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert "the damage is measured over them" in out.err  # the note, on one line
    assert "recall" in json.dumps(report) and "recall" not in out.out  # curves stay in the file
    # every pixel of the rectangle lies in an attacked tile
    covered = np.zeros((small_slide.shape[0] + 300, small_slide.shape[1] + 300), bool)
    for tx, ty, tw, th in report["tiles_level0"]:
        covered[ty : ty + th, tx : tx + tw] = True
    assert covered[max(y, 0) : y + h, max(x, 0) : x + w].all()
    ax0, ay0, ax1, _ = report["attacked_box"]
    assert ax0 <= x and ay0 <= y and ax1 >= min(x + w, small_slide.shape[1])
    # the pixels of the rectangle changed, and the detector's AUC-PR over them moved
    original, adversarial = open_slide(small_slide.path), open_delta(report["delta"])
    r0, c0 = max(y, 0) // 2, max(x, 0) // 2
    a = original.read_region(1, r0, c0, h // 2, w // 2).astype(int)
    b = adversarial.read_region(1, r0, c0, h // 2, w // 2).astype(int)
    assert (a != b).any(axis=2).mean() > 0.5
    clean, attacked = (report["aucpr"]["dae"][k]["aucpr"] for k in ("clean", "attacked"))
    assert attacked < clean - 0.01
    assert "found clean" in report["success_rule"]
    assert report["float"]["norms"]["l2_rms"] and "success_rate" in report["float"]
    # against the DAE's own clean calls, a cell-level success that can happen: on some
    # tiles fewer than half the tumour cells it found are still found
    args = [a for a in args if a not in ("--annotations", str(xml))]
    args[args.index("--budget") + 1], args[args.index("--steps") + 1] = "0.06", "10"
    args[args.index("--out") + 1] = str(tmp_path / "own")
    assert main(args) == 0
    own = json.loads((tmp_path / "own" / "report.json").read_text())
    assert 0 < own["success_rate"] < 1


def test_an_attack_failing_before_any_tile_leaves_no_store(small_slide, tmp_path, monkeypatch):
    import napari_cpadv.experiments.regions as region
    from napari_cpadv.attacks.base import AttackSpec
    from napari_cpadv.attacks.projections import Budget
    from napari_cpadv.progress import drive

    def broken(*args, **kwargs):
        raise RuntimeError("out of memory")
        yield  # pragma: no cover

    spec = AttackSpec("fgsm", Budget("l2", 1.0), 1, steps=2, tile=64)
    monkeypatch.setattr(type(spec.runner), "craft", broken)  # the attack fails at once
    out = tmp_path / "a.delta.zarr"
    with pytest.raises(RuntimeError, match="out of memory"):
        drive(region.attack_region(small_slide.path, make("dae"), spec, region=(0, 0, 200, 200),
                                   out=out))  # fmt: skip
    assert not out.exists()

"""Attacks over the tiles of a region: budget sweeps, transfer matrices, universal studies,
and their CLI commands (`cpadv sweep`, `transfer`, `universal`, `attack --attack universal`)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from napari_cpadv.annotations import Annotation, write_annotations
from napari_cpadv.attacks.base import AttackSpec, quantise, saved_visibility
from napari_cpadv.attacks.objectives import objective_for
from napari_cpadv.attacks.projections import Budget
from napari_cpadv.cli import main
from napari_cpadv.experiments.sweep import sweep
from napari_cpadv.experiments.tiles import region_tiles, tile_positions
from napari_cpadv.experiments.transfer import transfer
from napari_cpadv.experiments.universal_study import universal_study
from napari_cpadv.models import weights
from napari_cpadv.models.data import load_tiles
from napari_cpadv.models.detector import make
from napari_cpadv.progress import drive
from napari_cpadv.slide import open_slide

from ..conftest import TINY


@pytest.fixture(scope="module")
def dae():
    torch.manual_seed(0)
    return make("dae").eval()


@pytest.fixture(scope="module")
def sparse():
    torch.manual_seed(1)
    return make("sparse", **TINY["sparse"]).eval()


@pytest.fixture(scope="module")
def truth_xml(small_slide, tmp_path_factory):
    anns = [Annotation(p.exterior, p.holes, cls="Tumor") for p in small_slide.tumours]
    return write_annotations(anns, tmp_path_factory.mktemp("truth") / "truth.xml")


@pytest.fixture(scope="module")
def tiles(small_slide, truth_xml):
    from napari_cpadv.annotations import read_annotations

    slide = open_slide(small_slide.path)
    return region_tiles(slide, 1, (0, 384, 512, 256), 64, annotations=read_annotations(truth_xml))


def test_tile_positions_lie_on_the_level_grid_and_cover_the_region():
    # level downsample 2: region x 100..612, y 0..300 -> level cols 50..306, rows 0..150
    pos = tile_positions((500, 768), 2.0, (100, 0, 512, 300), 64)
    assert pos[0] == (0, 0) and all(r % 64 == 0 and c % 64 == 0 for r, c in pos)
    assert {c for _, c in pos} == {0, 64, 128, 192, 256} and {r for r, _ in pos} == {0, 64, 128}
    assert tile_positions((500, 768), 2.0, (0, 0, 10, 10), 64) == [(0, 0)]  # smaller: covered
    assert tile_positions((500, 768), 2.0, (2000, 0, 10, 10), 64) == []  # off the level
    assert tile_positions((50, 768), 2.0, (0, 0, 10, 10), 64) == []  # level under one tile


@pytest.mark.parametrize("seed", range(20))
def test_every_pixel_of_a_rectangle_drawn_anywhere_is_in_an_attacked_tile(seed):
    rng = np.random.default_rng(seed)
    shape, ds, side = (700, 1001), float(rng.uniform(1, 4.1)), 128
    x, y = int(rng.integers(-50, int(shape[1] * ds))), int(rng.integers(-50, int(shape[0] * ds)))
    w, h = int(rng.integers(1, 900)), int(rng.integers(1, 900))
    pos = tile_positions(shape, ds, (x, y, w, h), side)
    covered = np.zeros(shape, bool)
    for r, c in pos:
        assert 0 <= r <= shape[0] - side and 0 <= c <= shape[1] - side
        covered[r : r + side, c : c + side] = True
    r0, c0 = max(0, int(np.floor(y / ds))), max(0, int(np.floor(x / ds)))
    r1, c1 = min(shape[0], int(np.ceil((y + h) / ds))), min(shape[1], int(np.ceil((x + w) / ds)))
    assert covered[r0:r1, c0:c1].all()
    assert len(pos) == len(set(pos))


def test_region_tiles_carry_the_cell_labels_of_the_annotations(tiles):
    # level 1 is 2.0017x: the tile grid starts at row 128 (holding level-0 y = 384)
    assert {r for r, _ in tiles.positions} == {128, 192, 256}
    assert tiles.x.shape == (12, 3, 64, 64) and tiles.labels.shape == (12, 16, 16)
    assert tiles.x.min() >= 0 and tiles.x.max() <= 1
    assert set(np.unique(tiles.labels)) == {0, 1}  # the region holds the slide's tumour


def test_quantise_rounds_the_adversarial_image_to_8_bits():
    x = torch.randint(0, 256, (1, 3, 8, 8)).float() / 255
    d = quantise(x, torch.full_like(x, 0.3 / 255))
    assert torch.allclose(((x + d) * 255).round(), (x + d) * 255, atol=1e-4)
    assert (d.abs() < 1e-6).all()  # 0.3 grey levels round away


def test_saved_visibility_measures_the_8_bit_images_a_user_would_save():
    from napari_cpadv.metrics.image import psnr

    x = torch.randint(0, 256, (2, 3, 16, 16)).float() / 255
    assert saved_visibility(x, torch.full_like(x, 0.3 / 255)) == {"psnr_db": None, "ssim": 1.0}
    sign = torch.randint(0, 2, x.shape).float() * 2 - 1
    seen = saved_visibility(x, sign * 2.4 / 255)  # two grey levels once saved, not 2.4
    saved = ((x + sign * 2.4 / 255).clamp(0, 1) * 255).round().permute(0, 2, 3, 1).numpy()
    original = (x * 255).round().permute(0, 2, 3, 1).numpy()
    assert seen["psnr_db"] == pytest.approx(psnr(original, saved))
    assert 0 < seen["ssim"] < 1


def test_craft_batches_give_the_same_deltas_as_one_batch(dae, tiles):
    x = tiles.x[:4]
    obj = objective_for(dae, x, tiles.labels[:4])
    spec = AttackSpec("fgsm", Budget("l2", 1.0), 1, steps=3)
    one = drive(spec.runner.craft(dae, x, obj, spec, batch=4))
    split = drive(spec.runner.craft(dae, x, obj, spec, batch=1))
    torch.testing.assert_close(one.delta, split.delta, atol=2 / 255, rtol=0)
    assert (one.success == split.success).all()


def test_sweep_reports_a_success_matrix_noise_rows_and_the_checks(dae, tiles):
    spec = AttackSpec("fgsm", Budget("l2", 0.0), 1, steps=4)
    rep = drive(sweep(dae, tiles, spec, [2.0, 0.0, 6.0], check=True))
    assert rep["budgets"] == [0.0, 2.0, 6.0]
    assert np.array(rep["success"]).shape == (3, 12)
    assert rep["rows"][0]["norms"]["l2_total"] == [0.0] * 12  # ε = 0 leaves the tiles alone
    assert rep["rows"][0]["aucpr"] == pytest.approx(rep["clean_aucpr"])
    aucprs = [r["aucpr"] for r in rep["rows"]]
    assert aucprs[2] < aucprs[0]  # the attack does damage
    for row in rep["rows"][1:]:
        assert row["noise"]["l2_total"] == pytest.approx(row["norms"]["l2_total"], abs=0.1)
        assert row["noise"]["damage"] < row["damage"]
    checks = rep["checks"]
    assert checks["doubled"]["steps"] == 8 and "one_step" in checks
    assert checks["gradient_norm"] > 0
    assert rep["warnings"] == []  # a healthy sweep: no sanity rule fails


def test_sweep_refuses_negative_budgets(dae, tiles):
    spec = AttackSpec("fgsm", Budget("l2", 1.0), 1, steps=1)
    with pytest.raises(ValueError, match=">= 0"):
        drive(sweep(dae, tiles, spec, [1.0, -1.0]))


def test_transfer_matrix_has_clean_noise_and_attack_rows(dae, sparse, tiles):
    spec = AttackSpec("fgsm", Budget("l2", 4.0), 1, steps=3)
    keep = np.flatnonzero(tiles.labels.any(axis=(1, 2)))[:2]  # two tiles with tumour
    sub = type(tiles)(tiles.x[keep], [tiles.positions[k] for k in keep], tiles.labels[keep], 1, 4)
    rep = drive(transfer({"dae": dae, "sparse": sparse}, sub, {"dae": spec}))
    assert set(rep["aucpr"]) == {"clean", "noise (dae)", "dae"}
    assert set(rep["aucpr"]["dae"]) == {"dae", "sparse"}
    assert set(rep["success"]) == set(rep["aucpr"])
    assert rep["aucpr"]["dae"]["dae"] <= rep["aucpr"]["clean"]["dae"]
    # Fig. 10's null model: the tumour prevalence of the scored cells
    assert rep["null_aucpr"] == pytest.approx(float(np.asarray(sub.labels).mean()))
    keep: dict = {}
    drive(transfer({"dae": dae, "sparse": sparse}, sub, {"dae": spec}, keep=keep))
    assert set(keep) == {"clean", "noise (dae)", "dae"} and keep["dae"].shape == sub.x.shape
    with pytest.raises(ValueError, match="level-0 patches"):
        drive(transfer({"dae": dae, "resnet18": make("resnet18", width=4)}, sub, {"dae": spec}))
    with pytest.raises(ValueError, match="latent attack"):
        drive(transfer({"dae": dae, "sparse": sparse}, sub, {"sparse": spec}))


def test_universal_study_learns_on_training_tiles_and_scores_held_out_ones(tile_folder):
    torch.manual_seed(0)
    resnet = make("resnet18", width=4).eval()
    data = load_tiles([tile_folder])
    half = np.arange(len(data)) % 2 == 0
    train, held = data.subset(half), data.subset(~half)
    spec = AttackSpec("universal", Budget("linf", 32, "per_pixel"), 0, epochs=2)
    delta, rep = drive(universal_study(resnet, train, held, spec, positives=False, batch=8))
    assert delta.shape == (1, 3, 64, 64)
    assert delta.abs().max() <= 32 / 255 + 1e-6
    assert rep["held_out"]["images"] > 0 and rep["train"]["images"] > 0
    # the held-out rates are those of the returned δ, applied to the held-out images again
    from napari_cpadv.experiments.universal_study import _target_objective, tile_set_inputs

    xh, _, target = tile_set_inputs(resnet, held, positives=False)
    objective = _target_objective(resnet, target)
    with torch.no_grad():
        clean = objective(resnet(xh))[1].float().mean()
        attacked = objective(resnet(xh + quantise(xh, delta.expand_as(xh))))[1].float().mean()
    assert rep["held_out"]["images"] == len(xh)
    assert rep["held_out"]["clean_error"] == pytest.approx(float(clean))
    assert rep["held_out"]["success_rate"] == pytest.approx(float(attacked))
    assert rep["norms"]["linf_255"][0] == pytest.approx(32, abs=0.01)


def test_cli_sweep_transfer_and_universal(small_slide, truth_xml, tile_folder, tmp_path, capsys):
    torch.manual_seed(0)
    w = str(weights.save(make("dae"), tmp_path / "dae"))
    common = ["--level", "1", "--tile", "64", "--region", "256", "384", "256", "256",
              "--annotations", str(truth_xml), "--steps", "2"]  # fmt: skip
    code = main(["sweep", str(small_slide.path), "--detector", "dae", "--weights", w, "--attack",
                 "fgsm", "--budgets", "0", "3", "--out", str(tmp_path / "s"), *common])  # fmt: skip
    assert code == 0
    rep = json.loads((tmp_path / "s" / "sweep.json").read_text())
    assert rep == json.loads(capsys.readouterr().out)
    assert len(rep["success"]) == 2 and len(rep["success"][0]) == len(rep["tiles"]) == 9

    torch.manual_seed(1)
    s = str(weights.save(make("sparse", **TINY["sparse"]), tmp_path / "sparse"))
    code = main(["transfer", str(small_slide.path), "--weights", f"dae={w}", f"sparse={s}",
                 "--budget", "3", "--out", str(tmp_path / "t"), *common])  # fmt: skip
    assert code == 0
    rep = json.loads((tmp_path / "t" / "transfer.json").read_text())
    capsys.readouterr()
    assert set(rep["aucpr"]) == {"clean", "noise (dae)", "noise (sparse)", "dae", "sparse"}
    assert {k: v["attack"] for k, v in rep["attacks"].items()} == {
        "dae": "fgsm",
        "sparse": "latent",
    }

    r = str(weights.save(make("resnet18", width=4), tmp_path / "resnet18"))
    code = main(["universal", str(tile_folder), "--holdout", str(tile_folder), "--detector",
                 "resnet18", "--weights", r, "--epochs", "1", "--all-tiles",
                 "--out", str(tmp_path / "u")])  # fmt: skip
    assert code == 0
    rep = json.loads((tmp_path / "u" / "report.json").read_text())
    d = np.load(tmp_path / "u" / "universal.npy", allow_pickle=False)
    assert d.shape == (64, 64, 3) and np.abs(d).max() <= 8 / 255 + 1e-6
    assert (tmp_path / "u" / "universal.png").stat().st_size > 0
    assert rep["budget"] == {"norm": "linf", "value": 8.0, "unit": "per_pixel"}
    assert rep["batch"] == 1  # seed 001: δ updated after each example


def test_cli_attack_universal_writes_one_delta_for_every_tile(small_slide, tmp_path, capsys):
    torch.manual_seed(0)
    w = str(weights.save(make("dae"), tmp_path / "dae"))
    code = main(["attack", str(small_slide.path), "--detector", "dae", "--weights", w,
                 "--attack", "universal", "--norm", "linf", "--unit", "per_pixel",
                 "--budget", "4", "--epochs", "2", "--level", "1", "--tile", "64",
                 "--region", "0", "0", "256", "128", "--out", str(tmp_path / "a")])  # fmt: skip
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    rep = json.loads(Path(summary["report"]).read_text())
    assert rep["tiles"] == summary["tiles"] == 2 and rep["attack"] == "universal"
    assert max(rep["norms"]["linf_255"]) <= 4 + 1e-6


def test_cli_transfer_refuses_weights_of_an_unlisted_detector(small_slide, tmp_path, capsys):
    code = main(["transfer", str(small_slide.path), "--detectors", "dae", "--weights",
                 "sparse=x.safetensors", "--attack", "fgsm", "--out", str(tmp_path)])  # fmt: skip
    assert code == 2 and "not among --detectors" in capsys.readouterr().err


def test_fgsm_on_the_sparse_coder_says_to_use_the_latent_attack(sparse, tiles):
    spec = AttackSpec("fgsm", Budget("l2", 1.0), 1, steps=1)
    with pytest.raises(ValueError, match="latent attack"):
        drive(spec.runner.craft(sparse, tiles.x[:1], objective_for(sparse, tiles.x[:1]), spec))


def test_cell_success_is_what_a_pathologist_would_act_on():
    from napari_cpadv.attacks.objectives import CellObjective

    clean = torch.zeros(3, 10, 10)
    clean[0, :2, :5] = 1  # tile 0: 10 tumour cells found clean
    clean[1, :2, :5] = 1  # tile 1: the same
    obj = CellObjective(clean, clean=clean, keep=0.5)
    adv = torch.full((3, 10, 10), -3.0)
    adv[0, 0, :4] = 3  # 4 of 10 still found: fewer than half, success
    adv[1, 0, :5] = 3  # 5 of 10 still found: not fewer than half
    adv[2, 5, 5] = 3  # tile 2 was normal: one cell of 100 is its call flipping
    assert obj.reported_success(adv).tolist() == [True, False, True]
    assert obj(adv)[1].tolist() == [False, False, False]  # the old rule: half of all cells
    assert CellObjective(clean, clean=clean, keep=0.3).reported_success(adv).tolist() == [
        False, False, True,
    ]  # fmt: skip


def test_rounding_is_reported_not_hidden():
    """Seed 001's L∞ = 0.5/255: the float δ has it, the saved 8-bit image has 0 or 1/255."""
    from napari_cpadv.attacks.base import rounding_warnings

    torch.manual_seed(0)
    det = make("dae").eval()
    x = torch.rand(2, 3, 32, 32)
    spec = AttackSpec("pgd", Budget("linf", 0.5, "per_pixel"), 0, steps=3, tile=32)
    res = drive(spec.runner.craft(det, x, objective_for(det, x), spec, batch=2))
    assert max(res.norms_float["linf_255"]) == pytest.approx(0.5, abs=1e-3)
    assert max(res.norms["linf_255"]) == pytest.approx(1.0, abs=1e-3)
    assert res.success_float is not None and res.success_float.shape == (2,)
    [warning] = rounding_warnings(res, spec.budget)
    assert "changed the achieved linf_255 by up to 100 %" in warning
    big = AttackSpec("pgd", Budget("linf", 8, "per_pixel"), 0, steps=3, tile=32)
    res = drive(big.runner.craft(det, x, objective_for(det, x), big, batch=2))
    assert rounding_warnings(res, big.budget) == []

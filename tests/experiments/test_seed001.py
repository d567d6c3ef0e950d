"""Seed 001's experiments on real (tiny) patches: cross-validation, the PCA landscape, the
four-norm success panels, UMAP with the attack's track, the flipped examples."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_cpadv.models.data import load_tiles
from napari_cpadv.models.detector import make
from napari_cpadv.progress import drive
from tests.conftest import TINY


@pytest.fixture(scope="module")
def patches(patch_folder):
    return load_tiles([patch_folder]).patch_labels()


@pytest.mark.slow
def test_cross_validation_is_stratified_and_finite(patches):
    from napari_cpadv.experiments.crossval import cross_validate

    data, labels = patches
    out = drive(cross_validate(data, runs=2, folds=2, width=4, epochs=1, batch=8))
    assert len(out["per_fold"]) == 4 and out["n"] == len(labels)
    for f in out["per_fold"]:
        assert f["train"] + f["test"] == len(labels)
        assert 0 <= f["accuracy"] <= 1
    # each run covers every patch once as a test patch
    assert sum(f["test"] for f in out["per_fold"] if f["run"] == 0) == len(labels)
    assert np.isfinite(out["accuracy"]["mean"]) and out["accuracy"]["std_runs"] >= 0


def test_cross_validation_refuses_too_few_of_a_class(patches):
    from napari_cpadv.experiments.crossval import cross_validate

    data, labels = patches
    one_positive = np.concatenate([np.flatnonzero(labels == 0), np.flatnonzero(labels == 1)[:1]])
    with pytest.raises(ValueError, match="stratified folds need"):
        drive(cross_validate(data.subset(one_positive), runs=1, folds=3, epochs=1))


CV = {"runs": 2, "folds": 2, "width": 4, "epochs": 1, "batch": 8}


@pytest.fixture(scope="module")
def uninterrupted(patches):
    """Table 1a's folds trained one after another in this process."""
    from napari_cpadv.experiments.crossval import cross_validate

    return drive(cross_validate(patches[0], **CV))


def counting(monkeypatch):
    """Count the folds trained in this process from now on."""
    from napari_cpadv.experiments import crossval

    trained = []
    real = crossval.train_fold

    def train_fold(shared, f, device):
        trained.append(f.index)
        return real(shared, f, device)

    monkeypatch.setattr(crossval, "train_fold", train_fold)
    return trained


def test_a_stopped_cross_validation_trains_only_the_folds_it_had_not_finished(
    patches, uninterrupted, tmp_path, monkeypatch
):
    """Stopped after two folds (Ctrl-C), the same run with the same journal trains the other
    two and reports what one uninterrupted run reports."""
    from napari_cpadv.experiments.chunks import Journal, Ledger
    from napari_cpadv.experiments.crossval import cross_validate

    head = {"fingerprint": "x", "chunks": [[r, f] for r in range(2) for f in range(2)]}
    ledger = Ledger.opened(Journal(tmp_path, "folds.jsonl"), head)
    work = cross_validate(patches[0], **CV, ledger=ledger)
    for _ in work:
        if len(ledger.done) == 2:
            work.close()
    assert sorted(ledger.done) == [0, 1]
    trained = counting(monkeypatch)
    again = Ledger.opened(Journal(tmp_path, "folds.jsonl"), head)
    assert sorted(again.done) == [0, 1]  # read back from the journal
    out = drive(cross_validate(patches[0], **CV, ledger=again))
    assert trained == [2, 3]
    assert out == uninterrupted
    # a journal of another plan (another fingerprint) is not trusted: every fold again
    other = Ledger.opened(Journal(tmp_path, "folds.jsonl"), {**head, "fingerprint": "y"})
    assert other.done == {}


@pytest.mark.slow
def test_cross_validation_on_two_workers_gives_the_folds_of_one_process(
    patches, uninterrupted, two_workers, monkeypatch
):
    from napari_cpadv.experiments.crossval import cross_validate

    trained = counting(monkeypatch)  # counts this process only: the workers train
    steps = []
    out = drive(cross_validate(patches[0], **CV, cluster=two_workers), steps.append)
    assert trained == []
    assert [p.step for p in steps] == [1, 2, 3, 4] and steps[-1].total == 4
    assert out["per_fold"] == uninterrupted["per_fold"]
    assert out["accuracy"] == uninterrupted["accuracy"]


def test_pca_plane_recovers_a_planar_trajectory():
    from napari_cpadv.experiments.landscape import pca_plane

    rng = np.random.default_rng(0)
    d1, d2 = np.linalg.qr(rng.normal(size=(50, 2)))[0].T
    final = rng.normal(size=50).astype(np.float32)
    ab = [(3.0, 1.0), (2.0, -1.0), (1.5, 0.5), (0.5, 0.2), (0.0, 0.0)]
    path = [final + a * d1 + b * d2 for a, b in ab]
    directions, coords, explained = pca_plane(path)
    assert sum(explained["explained_variance_ratio"]) == pytest.approx(1, abs=1e-5)
    # every point is final + coords · directions: the plane holds the whole path
    for w, c in zip(path, coords, strict=True):
        assert np.allclose(final + c @ directions, w, atol=1e-4)
    assert np.allclose(coords[-1], 0)


def test_loss_landscape_passes_through_the_trained_model(patches):
    from napari_cpadv.experiments.landscape import loss_landscape
    from napari_cpadv.models.train import flat_parameters, train_resnet

    data, labels = patches
    model = make("resnet18", **TINY["resnet18"])
    path: list[np.ndarray] = []
    drive(train_resnet(model, data, epochs=2, batch=8, lr=0.1, trajectory=path))
    assert len(path) == 3  # before training and after each epoch
    final = flat_parameters(model)
    out = drive(loss_landscape(model, path, data.images[:6], labels[:6], points=3, margin=0))
    assert np.array_equal(flat_parameters(model), final)  # the model is given back as trained
    assert np.asarray(out["loss"]).shape == (3, 3) and len(out["trajectory"]) == 3
    # the trajectory's last point is the trained model: its loss is the model's own
    with torch.no_grad():
        from napari_cpadv.device import to_tensor

        own = torch.nn.functional.cross_entropy(
            model.eval()(to_tensor(data.images[:6])), torch.from_numpy(labels[:6])
        )
    assert out["trajectory_loss"][-1] == pytest.approx(float(own), rel=1e-4)


def test_norm_panels_keep_every_budget(patches):
    from napari_cpadv.experiments.norms import norm_panels

    data, _ = patches
    torch.manual_seed(0)
    model = make("resnet18", **TINY["resnet18"]).eval()
    with torch.no_grad():  # attack against the model's own calls: every patch is "right"
        from napari_cpadv.device import to_tensor

        labels = model(to_tensor(data.images[:4])).argmax(1).numpy()
    budgets = {"l0": (0.01, 0.05), "l1": (0.5, 1.0), "l2": (0.5, 1.0), "linf": (0.5, 2.0)}
    out = drive(norm_panels(model, data.images[:4], labels, budgets=budgets, steps=3))
    assert out["attacked"] == 4
    for norm, key, scale in (("l0", "l0_fraction", 1), ("l1", "l1_mad", 255),
                             ("l2", "l2_rms", 255), ("linf", "linf_255", 1)):  # fmt: skip
        for row in out[norm]["rows"]:
            assert row["achieved"][key] * scale <= row["budget"] * 1.001 + 1e-6
            assert 0 <= row["success_8bit"] <= 1
            # the saved images' visibility: a bigger budget is at least as visible
            assert 0 < row["ssim"] <= 1 and (row["psnr_db"] is None or row["psnr_db"] > 20)
        small, big = out[norm]["rows"][0], out[norm]["rows"][-1]
        assert big["ssim"] <= small["ssim"] + 1e-9
        assert set(out[norm]["checks"]) == {"budget", "noise", "one_step", "doubled",
                                            "gradient", "monotone"}  # fmt: skip
        assert "delta" not in out[norm]["rows"][0]


@pytest.mark.slow  # UMAP compiles its numba kernels on first use (about 15 s)
def test_umap_track_has_one_point_per_step(patches):
    from napari_cpadv.experiments.features import attack_track, umap_with_track
    from napari_cpadv.experiments.norms import budget_of

    data, _ = patches
    torch.manual_seed(1)
    model = make("resnet18", **TINY["resnet18"]).eval()
    from napari_cpadv.device import to_tensor

    x = to_tensor(data.images[:1])
    label = int(model(x).argmax(1))
    track = drive(
        attack_track(model, x, label, budget=budget_of("none", 0), steps=4, confidence=50)
    )
    assert len(track["features"]) == 5  # steps 0..3 and the final score
    assert len(track["probability"]) == 5
    out = drive(umap_with_track(model, data.images[:10], budget=budget_of("linf", 8), steps=3))
    assert len(out["groups"]) == len(out["embedding"]) == 10 + out["flipped"]
    assert set(out["groups"]) <= {"TP", "TN", "adv+", "adv-"}
    assert np.isfinite(np.asarray(out["track"])).all()

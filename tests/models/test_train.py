"""Each training loop lowers its loss on a tiny synthetic set, on the CPU."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_cpadv.models.data import load_tiles
from napari_cpadv.models.detector import make
from napari_cpadv.models.fit import Schedule, fit
from napari_cpadv.models.train import (
    train_dae,
    train_dictionary,
    train_head,
    train_resnet,
)
from napari_cpadv.progress import Progress, drive

from ..conftest import TINY


@pytest.fixture(scope="module")
def data(tile_folder):
    return load_tiles([tile_folder])


def test_tiles_load_with_masks_and_nuclei(data):
    assert data.images.shape[1:] == (64, 64, 3) and data.masks.shape[1:] == (16, 16)
    assert data.tumour_cells.max() > 0 and (data.tumour_cells == 0).any()
    assert (data.nuclei >= data.tumour_nuclei).all() and data.nuclei.max() > 0


@pytest.mark.slow
def test_dae_loss_falls(data):
    losses = drive(train_dae(make("dae"), data, epochs=3, batch=4, lr=3e-3))
    assert losses[-1] < 0.8 * losses[0]


@pytest.mark.slow
def test_dictionary_loss_falls_and_atoms_stay_unit(data):
    det = make("sparse", **TINY["sparse"])
    steps: list[Progress] = []
    losses = drive(train_dictionary(det, data, epochs=2, batch=4, crop=32, lr=1e-2), steps.append)
    assert np.mean(losses[-5:]) < np.mean(losses[:5])
    norms = det.lca.dictionary.detach().flatten(1).norm(dim=1)
    assert np.allclose(norms.numpy(), 1, atol=1e-5)
    assert steps[-1].step == steps[-1].total and "zeros" in steps[-1].payload


@pytest.mark.parametrize("name", ["dae", "sparse"])
def test_head_loss_falls(data, name):
    det = make(name, **TINY[name])
    losses = drive(train_head(det, data, epochs=4, batch=4, lr=3e-3))
    assert losses[-1] < losses[0]


def test_resnet_loss_falls(data):
    det = make("resnet18", width=4)
    # 64-pixel tiles at level 1 hold few nuclei; label by any tumour nucleus for this test
    data = data.subset(np.ones(len(data), bool))
    object.__setattr__(data, "tumour_nuclei", np.where(data.tumour_nuclei > 0, 5, 0))
    losses = drive(train_resnet(det, data, epochs=4, batch=8, lr=1.0))
    assert losses[-1] < losses[0]


def test_closing_a_training_generator_stops_it(data):
    work = train_dae(make("dae"), data, epochs=50, batch=4)
    first = next(work)
    work.close()
    assert first.step == 1 and first.total == 50 * -(-len(data) // 4)


def test_fit_records_the_data_and_holdout_metrics(tile_folder):
    det, record = drive(
        fit("dae", [tile_folder], schedule=Schedule(autoencoder=1, head=1), holdout=[tile_folder])
    )
    assert record["training"]["level"] == 1 and record["training"]["tiles"] > 0
    m = record["metrics"]
    assert 0 < m["null_aucpr"] < 1 and m["n_cells"] > 0
    # the recorded hold-out AUC-PR is the trained detector's, computed again here by hand:
    # average precision of its logits over the held-out cells against their masks
    from sklearn.metrics import average_precision_score

    from napari_cpadv.models.data import load_tiles

    data = load_tiles([tile_folder])
    x = torch.from_numpy(data.images).permute(0, 3, 1, 2).float() / 255
    with torch.no_grad():
        logits = det.eval()(x).numpy()
    again = average_precision_score(data.masks.ravel(), logits.ravel())
    assert m["aucpr"] == pytest.approx(again, abs=1e-6)
    assert m["n_cells"] == data.masks.size and m["null_aucpr"] == pytest.approx(data.masks.mean())

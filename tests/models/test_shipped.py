"""The weights in sample_data/weights load, record how they were made, and detect tumour."""

from __future__ import annotations

import json

import pytest

from napari_cpadv.cli import main
from napari_cpadv.models import weights
from napari_cpadv.models.detector import NAMES

from ..conftest import REPO, SAMPLE

SHIPPED = REPO / "sample_data" / "weights"


@pytest.mark.parametrize("name", NAMES)
def test_shipped_weights_load_and_record_their_training(name):
    det = weights.resolve(name, None)
    assert det.name == name and not det.training
    config = json.loads((SHIPPED / f"{name}.json").read_text())
    assert config["training"]["command"].startswith(f"cpadv train {name} ")
    assert config["training"]["seed"] == 0 and config["metrics"]["holdout"]
    assert not any("21" in d.rsplit("/", 1)[-1] for d in config["training"]["data"])  # held out


def test_shipped_weights_fit_the_budget():
    total = sum(p.stat().st_size for p in SHIPPED.glob("*.safetensors"))
    assert total < 15 * 2**20


def test_shipped_scores_on_the_held_out_slide_meet_the_targets():
    m = {n: json.loads((SHIPPED / f"{n}.json").read_text())["metrics"] for n in NAMES}
    assert m["dae"]["aucpr"] >= 0.90 and m["dae"]["aucpr"] > 10 * m["dae"]["null_aucpr"]
    assert m["resnet18"]["aucroc"] >= 0.95
    assert m["sparse"]["aucpr"] >= 0.90 and m["sparse"]["aucpr"] > 10 * m["sparse"]["null_aucpr"]


@pytest.mark.slow
def test_shipped_dae_finds_the_sample_slides_tumour(capsys):
    # the sample slide (seed 7) was never trained on
    assert (
        main(["evaluate", str(SAMPLE), str(SAMPLE.with_suffix(".xml")), "--detector", "dae"]) == 0
    )
    out = json.loads(capsys.readouterr().out)
    assert out["level"] == 2 and out["aucpr"] > 0.8 > 10 * out["null_aucpr"]

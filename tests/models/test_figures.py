"""Seed 000's pictures from the CLI."""

from __future__ import annotations

import json

import numpy as np
from PIL import Image

from napari_cpadv.cli import main
from napari_cpadv.models import weights
from napari_cpadv.models.detector import make

from ..conftest import SAMPLE, TINY


def test_figures_reconstructions_and_features(tmp_path, capsys):
    dae = weights.save(make("dae"), tmp_path / "dae")
    sparse = weights.save(make("sparse", **TINY["sparse"]), tmp_path / "sparse")
    common = ["--dae-weights", str(dae), "--sparse-weights", str(sparse)]
    assert (
        main(
            [
                "figures",
                "reconstructions",
                "--out",
                str(tmp_path / "r"),
                "--slide",
                str(SAMPLE),
                "--size",
                "64",
                *common,
            ]
        )
        == 0
    )
    files = {p.rsplit("/", 1)[-1] for p in json.loads(capsys.readouterr().out)["figures"]}
    assert {
        "clean.png",
        "sparse.png",
        "dae.png",
        "noisy.png",
        "sparse_noisy.png",
        "dae_noisy.png",
        "figure_2.png",
    } == files
    clean = np.asarray(Image.open(tmp_path / "r" / "clean.png"))
    noisy = np.asarray(Image.open(tmp_path / "r" / "noisy.png"))
    assert clean.shape == (64, 64, 3) and 15 < np.abs(clean.astype(int) - noisy).mean() < 40
    assert main(["figures", "features", "--out", str(tmp_path / "f"), *common]) == 0
    kernels = np.asarray(Image.open(tmp_path / "f" / "dae_kernels.png"))
    assert kernels.shape == (4 * (48 + 2) + 2, 9 * (48 + 2) + 2, 3)  # 36 kernels, 6x enlarged

"""Small studies for the study tests: image pairs on disk, a built study."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image


def make_pairs(folder: Path, n: int = 4, size: tuple[int, int] = (24, 32)) -> Path:
    """``n`` cases ``case<k>_original.png`` / ``case<k>_adversarial.tif`` (the second a
    few grey levels off the first) and a ``truth.json``: odd cases show tumour."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for k in range(n):
        a = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
        b = np.clip(a.astype(int) + rng.integers(-3, 4, a.shape), 0, 255).astype(np.uint8)
        Image.fromarray(a).save(folder / f"case{k}_original.png")
        Image.fromarray(b).save(folder / f"case{k}_adversarial.tif")
    (folder / "truth.json").write_text(json.dumps({f"case{k}": bool(k % 2) for k in range(n)}))
    return folder


def make_study(root: Path, n: int = 4, **options) -> Path:
    """A built study folder of ``n`` cases (seed 5, two replicates unless told)."""
    from napari_cpadv.study.build import build_study, pairs_from_folder

    pairs = pairs_from_folder(make_pairs(root / "pairs", n))
    options.setdefault("seed", 5)
    build_study(pairs, root / "study", **options)
    return root / "study"


@pytest.fixture
def study_dir(tmp_path: Path) -> Path:
    return make_study(tmp_path)

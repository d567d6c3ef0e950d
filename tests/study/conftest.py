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


READERS = ("r1", "r2", "path01")


def make_study(root: Path, n: int = 4, **options) -> Path:
    """A built study folder of ``n`` cases (seed 5, two replicates, readers ``READERS``
    unless told); its key is ``key_of(folder)``."""
    from napari_cpadv.study.build import build_study
    from napari_cpadv.study.pairs import pairs_from_folder

    pairs = pairs_from_folder(make_pairs(root / "pairs", n))
    options.setdefault("seed", 5)
    options.setdefault("readers", READERS)
    build_study(pairs, root / "study", **options)
    return root / "study"


def _folder(study) -> Path:
    return Path(getattr(study, "folder", study))


def key_of(study) -> Path:
    """The key of a study built with the default key place."""
    from napari_cpadv.study.model import default_key_path

    return default_key_path(_folder(study))


def code(study, reader: str) -> str:
    """An enrolled reader's code, from the owner's key."""
    from napari_cpadv.study.model import reader_codes

    return reader_codes(key_of(study))[reader]


def secret(study, reader: str) -> bytes:
    from napari_cpadv.study.codes import secret_of

    return secret_of(code(study, reader))


@pytest.fixture
def study_dir(tmp_path: Path) -> Path:
    return make_study(tmp_path)

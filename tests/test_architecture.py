"""The core imports neither Qt nor napari (DESIGN.md), proven twice."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

BLOCKER = """
import sys, importlib.abc
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in {'napari', 'qtpy', 'PyQt5', 'PyQt6', 'PySide2', 'PySide6',
                                   'magicgui', 'superqt', 'vispy'}:
            raise ImportError(f'{name} is blocked: the core must not import it')
sys.meta_path.insert(0, Block())
"""


def test_import_linter_contracts():
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    if lint is None:
        pytest.skip("import-linter is not installed")
    proc = subprocess.run([lint], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_core_runs_with_qt_and_napari_unimportable(small_slide):
    code = (
        BLOCKER
        + f"""
import numpy as np
import napari_cpadv.cli, napari_cpadv.errors
from napari_cpadv.slide import open_slide
from napari_cpadv.slide.tiles import tissue_tiles
s = open_slide({str(small_slide.path)!r})
assert s.levels[1][:10, :10].compute().shape == (10, 10, 3)
assert tissue_tiles(s, level=0, size=128)
from napari_cpadv.models.detector import make
from napari_cpadv.inference.heatmap import heatmap
from napari_cpadv.progress import drive
import napari_cpadv.inference.batch, napari_cpadv.inference.ondemand, napari_cpadv.models.train
hm = drive(heatmap(make('dae').eval(), s, level=2, scope='slide'))
assert np.isfinite(hm.logits).all()
print('ok')
"""
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr


def test_importing_the_plugin_is_cheap():
    heavy = ("torch", "openslide", "napari", "dask", "zarr")
    code = f"import sys, napari_cpadv; print(sorted(m for m in {heavy!r} if m in sys.modules))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.stdout.strip() == "[]", proc.stdout + proc.stderr


def test_npe2_manifest_validates():
    npe2 = shutil.which("npe2", path=str(Path(sys.executable).parent))
    if npe2 is None:
        pytest.skip("npe2 is not installed")
    proc = subprocess.run(
        [npe2, "validate", "napari_cpadv"], cwd=REPO, capture_output=True, text=True
    )
    assert proc.returncode == 0 and "valid" in proc.stdout, proc.stdout + proc.stderr

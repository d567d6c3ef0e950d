"""A `cpadv attack` killed with SIGKILL mid-run leaves a readable adversarial slide: every
tile in its index is attacked, every other tile is the original, bit for bit."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from napari_cpadv.models import weights
from napari_cpadv.models.detector import make
from napari_cpadv.slide import open_slide
from napari_cpadv.slide.delta import open_delta

pytestmark = pytest.mark.slow


def _touched(folder) -> dict:
    try:
        return json.loads((folder / "zarr.json").read_text())["attributes"].get("touched", {})
    except (OSError, ValueError, KeyError):
        return {}


@pytest.mark.parametrize("after_tiles", [1, 3])
def test_a_killed_attack_keeps_every_finished_tile(small_slide, tmp_path, after_tiles):
    torch.manual_seed(0)
    w = str(weights.save(make("dae"), tmp_path / "dae"))
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "napari_cpadv.cli", "attack", str(small_slide.path),
           "--detector", "dae", "--weights", w, "--attack", "fgsm", "--budget", "3",
           "--steps", "40", "--level", "1", "--tile", "64", "--batch", "1",
           "--region", "0", "0", "1537", "1001", "--out", str(out)]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    delta = out / "adversarial.delta.zarr"
    try:
        deadline = time.monotonic() + 300
        while len(_touched(delta).get("1", [])) < after_tiles:
            assert proc.poll() is None, "the attack ended before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    assert not (out / "report.json").exists()  # it really died mid-run
    original, adversarial = open_slide(small_slide.path), open_delta(delta)
    touched = {tuple(t) for t in adversarial.store.touched.get(1, set())}
    assert len(touched) >= after_tiles
    g = original.geometry[1]
    for level in range(len(original.geometry)):
        a = np.asarray(original.levels[level])
        b = np.asarray(adversarial.levels[level])  # every tile readable
        assert a.shape == b.shape
    a, b = np.asarray(original.levels[1]), np.asarray(adversarial.levels[1])
    for tr in range(-(-g.rows // g.tile_rows)):
        for tc in range(-(-g.cols // g.tile_cols)):
            sl = np.s_[
                tr * g.tile_rows : (tr + 1) * g.tile_rows, tc * g.tile_cols : (tc + 1) * g.tile_cols
            ]
            if (tr, tc) not in touched:
                np.testing.assert_array_equal(a[sl], b[sl])
    assert any((a[sl] != b[sl]).any() for sl in [np.s_[:, :]])

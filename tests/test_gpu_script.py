"""The one prepared GPU script (benchmarks/gpu.sh, issue 32) run as CI runs it: on the CPU
at toy sizes, so that it cannot rot before a GPU is lent."""

from __future__ import annotations

import json
import subprocess

import pytest

from .conftest import REPO


@pytest.mark.slow
def test_the_gpu_script_runs_every_section_at_toy_size(tmp_path):
    out = tmp_path / "gpu"
    done = subprocess.run(
        ["bash", str(REPO / "benchmarks/gpu.sh"), "--device", "cpu", "--tiny", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert done.stdout.startswith("set up in ")
    doc = json.loads((out / "gpu.json").read_text())
    sections = doc["sections"]
    assert list(sections) == [
        "setup",
        "slide",
        "heatmaps",
        "attacks",
        "resnet18_epoch",
        "reproduce",
    ]
    assert not [name for name, record in sections.items() if "failed" in record]
    assert doc["scale"] == "tiny" and doc["device"] == "cpu" and doc["commit"]
    for name in ("dae", "sparse"):
        heat = sections["heatmaps"][name]
        assert heat["blocks"] > 0 and 0 < heat["blocks_done"] <= heat["blocks"]
        assert heat["complete"] or heat["whole_slide_s_estimate"] > 0
    attacks = sections["attacks"]
    assert (
        attacks["dae fgsm"]["tiles_per_s"] > 0 and attacks["dae fgsm"]["over_forward_backward"] > 0
    )
    assert "skipped" in attacks["sparse fgsm"]  # no gradient through the LCA: said, not run
    assert attacks["sparse latent"]["tiles_per_s"] > 0
    assert sections["resnet18_epoch"]["seconds_per_epoch"] > 0
    assert set(sections["reproduce"]["seed000/dae"]) == {"seed000/data", "seed000/dae"}
    rows = (out / "rows.md").read_text()
    assert rows.startswith("Measured on x86_64 CPU, ") and "(cpu)" in rows
    assert "| attacks | dae fgsm |" in rows and "scale tiny" in rows

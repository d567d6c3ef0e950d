"""A Camelyon16-sized annotation rasterised at level 2 in bounded memory (issue 13, item 9)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
import tifffile

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_mask_memory.py"


@pytest.mark.slow
def test_a_million_vertex_annotation_at_level_2_stays_under_1_gb(tmp_path):
    spec = importlib.util.spec_from_file_location("bench_mask_memory", BENCH)
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    slide, xml, out = tmp_path / "c16.tif", tmp_path / "c16.xml", tmp_path / "mask.tif"
    bench.make_slide(slide)
    bench.make_xml(xml)
    assert xml.stat().st_size > 40 * 2**20  # 10^6 coordinates
    code = (
        "import resource, sys\n"
        "from napari_cpadv.cli import main\n"
        "rc = main(sys.argv[1:])\n"
        "print('PEAK', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\n"
        "sys.exit(rc)\n"
    )
    args = ["mask", str(slide), str(xml), "--level", "2", "--out", str(out)]
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    peak_kb = int(proc.stderr.split("PEAK")[-1].split()[0])
    assert peak_kb * 1024 < 2**30, f"peak {peak_kb / 1024:.0f} MB"
    result = json.loads(proc.stdout)
    assert result["shape"] == [25_000, 50_000] and 0.01 < result["tumour_fraction"] < 0.5
    with tifffile.TiffFile(out) as tf:
        assert tf.pages[0].shape == (25_000, 50_000)
        coarse = tf.pages[len(tf.pages) - 1].asarray()  # the 2 x 2-max pyramid's top
    assert 0 < coarse.mean() < 0.6

"""Peak memory of `cpadv mask` for a Camelyon16-sized annotation (issue 13, item 9).

A 100,000 x 200,000 slide (three levels, every tile left out of the file: only the geometry
matters) and an ASAP XML of 10^6 vertices (20 jagged tumour outlines of 50,000 vertices each,
as real Camelyon16 level-0 annotations are), rasterised at level 2 (a 25,000 x 50,000 mask).
Each run is a fresh process; its peak resident memory is the kernel's ``ru_maxrss``. The
code before this change (``--old COMMIT``, checked out into a worktree) runs side by side,
under an 8 GiB address-space cap so that it fails instead of swapping.

Usage: python benchmarks/bench_mask_memory.py [--old COMMIT]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import tifffile

REPO = Path(__file__).resolve().parents[1]
WORK = REPO / "benchmarks" / "_work" / "mask-memory"
LEVEL0 = (100_000, 200_000)  # rows, cols
CAP = 8 * 2**30


def make_slide(path: Path) -> None:
    if path.exists():
        return
    with tifffile.TiffWriter(path, bigtiff=True) as tw:
        for k in range(3):
            rows, cols = LEVEL0[0] // 2**k, LEVEL0[1] // 2**k
            empty = (b"" for _ in range(-(-rows // 512) * -(-cols // 512)))
            tw.write(
                empty, shape=(rows, cols, 3), dtype=np.uint8, tile=(512, 512),
                photometric="rgb", compression="jpeg", subfiletype=1 if k else 0,
                resolution=(1e4 / 0.243, 1e4 / 0.243), resolutionunit="CENTIMETER",
            )  # fmt: skip


def make_xml(path: Path, polygons: int = 20, vertices: int = 50_000) -> None:
    if path.exists():
        return
    rng = np.random.default_rng(0)
    with path.open("w") as f:
        f.write('<?xml version="1.0"?>\n<ASAP_Annotations>\n<Annotations>\n')
        for k in range(polygons):
            cx, cy = rng.uniform(20_000, 180_000), rng.uniform(10_000, 90_000)
            t = np.linspace(0, 2 * np.pi, vertices, endpoint=False)
            r = rng.uniform(2_000, 8_000) * (1 + 0.05 * rng.normal(size=vertices))
            x, y = cx + r * np.cos(t), cy + r * np.sin(t)
            f.write(f'<Annotation Name="Annotation {k}" Type="Polygon" PartOfGroup="_0" '
                    'Color="#F4FA58"><Coordinates>\n')  # fmt: skip
            f.writelines(
                f'<Coordinate Order="{j}" X="{x[j]:.1f}" Y="{y[j]:.1f}" />\n'
                for j in range(vertices)
            )
            f.write("</Coordinates></Annotation>\n")
        f.write("</Annotations>\n<AnnotationGroups>\n")
        f.write('<Group Name="_0" PartOfGroup="None" Color="#F4FA58"><Attributes /></Group>\n')
        f.write("</AnnotationGroups>\n</ASAP_Annotations>\n")


def run(cpadv: list[str], slide: Path, xml: Path, out: Path, cwd: Path) -> dict:
    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (CAP, CAP))

    t = time.perf_counter()
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    proc = subprocess.run(
        [*cpadv, "mask", str(slide), str(xml), "--level", "2", "--out", str(out)],
        capture_output=True, text=True, cwd=cwd, preexec_fn=cap,
        env={**os.environ, "PYTHONPATH": str(cwd)},
    )  # fmt: skip
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {
        "exit": proc.returncode,
        "seconds": round(time.perf_counter() - t, 1),
        # RUSAGE_CHILDREN is the largest child so far: runs go from the smaller to larger
        "peak_rss_mb": round(peak / 1024) if peak > before else None,
        "stderr": proc.stderr.strip().splitlines()[-1:] if proc.returncode else [],
        "stdout": json.loads(proc.stdout) if proc.returncode == 0 else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--old", help="a commit of the code before, run side by side")
    args = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    slide, xml = WORK / "camelyon-sized.tif", WORK / "million.xml"
    make_slide(slide)
    make_xml(xml)
    cmd = [sys.executable, "-m", "napari_cpadv.cli"]
    results = {"new": run(cmd, slide, xml, WORK / "mask-new.tif", REPO)}
    if args.old:
        tree = WORK / "old"
        if not tree.exists():
            subprocess.run(["git", "worktree", "add", "--detach", str(tree), args.old],
                           cwd=REPO, check=True)  # fmt: skip
        results["old"] = run(cmd, slide, xml, WORK / "mask-old.tif", tree)
    for r in results.values():
        if r["stdout"]:
            r["stdout"] = {key: r["stdout"][key] for key in ("shape", "tumour_fraction")}
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

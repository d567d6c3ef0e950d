"""Panning a slide in a real napari viewer (issue 18, item 2): the plugin beside napari-wsi,
each in fresh processes, in napari's synchronous and asynchronous slicing.

Run under a display (``xvfb-run -a -s "-screen 0 1920x1080x24" python
benchmarks/bench_viewer.py``). napari-wsi 1.3.0 is installed beside the project, not into
it: ``pip install --no-deps --target benchmarks/_work/wsi-site napari-wsi==1.3.0
universal-pathlib pathlib-abc``; its runs get that folder on ``PYTHONPATH``.

In each process: an empty 1600 x 1000 viewer, then the slide opened (the plugin's reader,
whose ground-truth layer from the annotations beside the slide is removed at once, so both
draw one layer; napari-wsi's ``OpenSlideStore(...).to_viewer``), the camera at one screen
pixel a level-0 pixel, and

* first frame: from the open to the first view drawn with its data loaded;
* pan steps: the camera moved 256 screen pixels to the right, 20 times, each timed from
  the move to a frame drawn with the layer's data loaded at level 0 (the vispy canvas
  repainted until then: what "a sharp view" costs, drawing included);
* paced pan steps: 20 more such steps, each 150 ms after the last view was sharp (a
  person's pace; what the plugin's reading ahead has to work in);
* continuous pan: the camera moved 32 pixels a frame for 3 s, frames drawn a second;
* memory: peak resident memory (VmHWM) after all of it, less the empty viewer's.

Prints one JSON object a line per process and a summary of medians. Timings are of this
VM's software OpenGL (Mesa llvmpipe): compare the two readers, not the absolute numbers.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WSI_SITE = ROOT / "benchmarks" / "_work" / "wsi-site"

CHILD = r"""
import json, sys, time
import napari
from qtpy.QtWidgets import QApplication

path, who = sys.argv[1], sys.argv[2]


def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) / 1024


viewer = napari.Viewer(show=True)
viewer.window.resize(1600, 1000)
app = QApplication.instance()
for _ in range(50):
    app.processEvents()
canvas = viewer.window._qt_viewer.canvas._scene_canvas
empty = status("VmRSS")
t0 = time.perf_counter()
if who == "cpadv":
    opened = viewer.open(path, plugin="napari-cpadv")
    layer = opened[0]
    for other in opened[1:]:  # the ground truth it finds beside the slide: napari-wsi has none
        viewer.layers.remove(other)
else:
    from napari_wsi.backends.openslide import OpenSlideStore

    layer = OpenSlideStore(path).to_viewer(viewer)[0]
s = float(layer.scale[-1])
rows, cols = layer.data[0].shape[:2]


def sharp(level):
    # repaint until the layer holds its data at `level`, then one frame that shows it
    deadline = time.perf_counter() + 20
    while time.perf_counter() < deadline:
        canvas.native.repaint()
        app.processEvents()
        if layer.loaded and layer.data_level == level:
            canvas.native.repaint()
            return
    raise RuntimeError("the view never loaded")


sharp(layer.data_level)
first = time.perf_counter() - t0
viewer.camera.zoom = 1 / s
r, c = rows // 2, 800
viewer.camera.center = (r * s, c * s)
sharp(0)
steps = []
for _ in range(20):
    c += 256
    t = time.perf_counter()
    viewer.camera.center = (r * s, c * s)
    sharp(0)
    steps.append(time.perf_counter() - t)
paced = []  # the same steps at a person's pace: 150 ms between one sharp view and the next move
for _ in range(20):
    pause = time.perf_counter() + 0.15
    while time.perf_counter() < pause:
        app.processEvents()
        time.sleep(0.005)
    c += 256
    t = time.perf_counter()
    viewer.camera.center = (r * s, c * s)
    sharp(0)
    paced.append(time.perf_counter() - t)
frames, t = 0, time.perf_counter()
while time.perf_counter() - t < 3:
    c = c + 32 if c + 32 < cols - 1000 else 800
    viewer.camera.center = (r * s, c * s)
    canvas.native.repaint()
    app.processEvents()
    frames += 1
fps = frames / (time.perf_counter() - t)
print(json.dumps({"first_frame_s": first, "steps_s": steps, "paced_s": paced, "fps": fps,
                  "memory_mb": status("VmHWM") - empty}))
viewer.close()
"""


def run(path: Path, who: str, asynchronous: bool) -> dict:
    env = dict(os.environ, NAPARI_ASYNC="1" if asynchronous else "0")
    if who == "napari-wsi":
        env["PYTHONPATH"] = os.pathsep.join([str(WSI_SITE), env.get("PYTHONPATH", "")])
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(path), who],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    lines = [x for x in out.stdout.splitlines() if x.startswith("{")]
    if out.returncode or not lines:
        raise RuntimeError(f"{who}: {out.stderr[-2000:]}")
    return json.loads(lines[-1])


def main() -> int:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "build/weights-data/slide21.tif"
    commit = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    print(json.dumps({"slide": str(path), "date": time.strftime("%Y-%m-%d"), "commit": commit}))
    results: dict[tuple[str, bool], list[dict]] = {}
    for rep in range(3):
        for who in ("cpadv", "napari-wsi") if rep % 2 == 0 else ("napari-wsi", "cpadv"):
            for asynchronous in (False, True):
                res = run(path, who, asynchronous)
                results.setdefault((who, asynchronous), []).append(res)
                print(json.dumps({"who": who, "async": asynchronous, **res}), flush=True)
    for (who, asynchronous), runs in results.items():
        steps = sorted(s for r in runs for s in r["steps_s"])
        paced = sorted(s for r in runs for s in r["paced_s"])
        print(
            json.dumps(
                {
                    "who": who,
                    "slicing": "async" if asynchronous else "sync",
                    "step_median_ms": 1e3 * statistics.median(steps),
                    "step_p95_ms": 1e3 * steps[int(0.95 * (len(steps) - 1))],
                    "paced_median_ms": 1e3 * statistics.median(paced),
                    "paced_p95_ms": 1e3 * paced[int(0.95 * (len(paced) - 1))],
                    "fps": statistics.median(r["fps"] for r in runs),
                    "first_frame_s": statistics.median(r["first_frame_s"] for r in runs),
                    "memory_mb": statistics.median(r["memory_mb"] for r in runs),
                }
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

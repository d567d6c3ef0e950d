"""The longest stall of napari's GUI thread during each long action of the Attack dock
(issue 16, item 3), beside napari's own cost of the same kind of work in the same viewer.

Run under a display (``xvfb-run -a -s "-screen 0 1920x1080x24" python
benchmarks/bench_gui_stalls.py [--runs 3] [--repo PATH]``); ``--repo`` points the child
processes at another checkout (an older commit, for the numbers before a change).

In each fresh process: a 1366 x 768 viewer with the shipped sample, a 50 ms timer whose
largest interval is the stall, and, in order,

* opening the Attack dock as napari's Plugins menu does (torch not yet imported), the
  stall until its attack list is found, then opening the Plots dock;
* napari's floor: the longest stall of napari adding (then removing) a copy of the slide
  layer, three times: the reference for every action below;
* a full garbage collection, as Python starts one on its own, with the plugin's heap
  frozen (a dock is shown) and released (``gc.unfreeze`` first): its own reference;
* the attack: Run with the dock's defaults (5 FGSM steps) until its layers are in;
* side by side on and off (the checkbox), then napari's own grid off and on directly;
* saliency before and after, until both layers are in.

In two more fresh processes each: the first open of the real carcinoma field from
``File > Open Sample`` (the slide and its 1,295 nuclei outlined by class), from the
window shown to both layers in, beside napari's own first add of the same picture and
the same outlines (decoded from the JPEG and read from the GeoJSON outside the timing);
and the study reader (a study of six 128 x 128 pairs, one question): opening its dock,
Start, and four Next, each the wall time and the longest stall.

Prints one JSON object a line per process and the medians. Timings are of this VM's
software OpenGL (Mesa llvmpipe) on its cores: compare each action with napari's own.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import gc, itertools, json, sys, tempfile, time
import napari
from qtpy.QtCore import QTimer
from qtpy.QtWidgets import QApplication

app = QApplication.instance() or QApplication([])
ticks = []
timer = QTimer()
timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
timer.start(50)


def wait(seconds):
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        app.processEvents()
        time.sleep(0.002)


def stall(action, until=lambda: True):
    wait(0.12)
    ticks.clear()
    ticks.append(time.perf_counter())
    action()
    while not until():
        app.processEvents()
        time.sleep(0.002)
    wait(0.15)
    ticks.append(time.perf_counter())
    return max(b - a for a, b in itertools.pairwise(ticks))


viewer = napari.Viewer(show=True)
viewer.window.resize(1366, 768)
slide = viewer.open(sys.argv[1], plugin="napari-cpadv")[0]
wait(1.0)
out = {}
docks = {}
add = viewer.window.add_plugin_dock_widget  # as napari's Plugins menu opens a dock
out["Attack dock open"] = stall(lambda: docks.update(attack=add("napari-cpadv", "Attack")[1]))
w = docks["attack"]
found = lambda: getattr(getattr(w, "form", None), "attacks_found", True)
out["until the attacks are listed"] = stall(lambda: None, found)  # torch, off the GUI thread
out["Plots dock open"] = stall(lambda: add("napari-cpadv", "Plots"))
w._results.setText(tempfile.mkdtemp())
w._steps.setValue(5)
wait(1.0)
floor = 0.0
for k in range(3):
    kw = dict(rgb=slide.rgb, multiscale=slide.multiscale, scale=slide.scale,
              translate=slide.translate, units=slide.units)
    floor = max(floor, stall(lambda: viewer.add_image(slide.data, name=f"copy {k}", **kw)))
    viewer.layers.remove(f"copy {k}")
    wait(0.3)
out["napari floor"] = floor
t = time.perf_counter(); gc.collect(); out["full collection, frozen"] = time.perf_counter() - t
gc.unfreeze()
t = time.perf_counter(); gc.collect(); out["full collection"] = time.perf_counter() - t
gc.freeze()
out["attack run"] = stall(w._run.click, w._run.isEnabled)
busy = lambda: getattr(w.compare, "busy", False)
grid = viewer.canvas.grid
out["side by side on"] = stall(lambda: w._grid.setChecked(True), lambda: not busy())
out["napari grid off"] = stall(lambda: setattr(grid, "enabled", False))
out["napari grid on"] = stall(lambda: setattr(grid, "enabled", True))
out["side by side off"] = stall(lambda: w._grid.setChecked(False), lambda: not busy())
n = len(viewer.layers)
out["saliency"] = stall(w._saliency.click, lambda: len(viewer.layers) >= n + 2)
print(json.dumps({k: round(v, 3) for k, v in out.items()}), flush=True)
viewer.close()
"""


FIRST_OPEN = r"""
import json, sys, time
import napari
from qtpy.QtWidgets import QApplication
app = QApplication.instance() or QApplication([])
viewer = napari.Viewer(show=True)
viewer.window.resize(1366, 768)
app.processEvents()
if sys.argv[1] == "plugin":
    t = time.perf_counter()
    viewer.open_sample("napari-cpadv", "hgsc_carcinoma")
else:  # napari's own first add of the same picture and outlines
    import numpy as np
    from PIL import Image
    root = sys.argv[2]
    pixels = np.asarray(Image.open(root + "/histolytics/source/hgsc_nest.jpg"))
    rings = [[(y, x) for x, y in f["geometry"]["coordinates"][0][:-1]] for f in
             json.load(open(root + "/hgsc_nest.geojson"))["features"]]
    t = time.perf_counter()
    viewer.add_image(pixels, rgb=True)
    viewer.add_shapes([np.asarray(r) for r in rings], shape_type="polygon")
app.processEvents()
print(json.dumps({"first open": round(time.perf_counter() - t, 3),
                  "layers": len(viewer.layers)}), flush=True)
viewer.close()
"""

READER = (
    CHILD.split("viewer = napari.Viewer")[0]
    + r"""
import numpy as np
from pathlib import Path
from PIL import Image
from napari_cpadv.study.build import build_study
from napari_cpadv.study.model import default_key_path, reader_codes
from napari_cpadv.study.pairs import pairs_from_folder

root = Path(tempfile.mkdtemp())
pairs = root / "pairs"
pairs.mkdir()
rng = np.random.default_rng(0)
for k in range(6):
    a = rng.integers(0, 256, (128, 128, 3), dtype=np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-3, 4, a.shape), 0, 255).astype(np.uint8)
    Image.fromarray(a).save(pairs / f"case{k}_original.png")
    Image.fromarray(b).save(pairs / f"case{k}_adversarial.tif")
(pairs / "truth.json").write_text(json.dumps({f"case{k}": bool(k % 2) for k in range(6)}))
build_study(pairs_from_folder(pairs), root / "study", seed=5, readers=("path01",),
            questions=["tumour"])
code = reader_codes(default_key_path(root / "study"))["path01"]
viewer = napari.Viewer(show=True)
viewer.window.resize(1366, 768)
wait(1.0)
out, docks = {}, {}


def timed(action, key):
    t = time.perf_counter()
    out[key + " stall"] = stall(action)
    out[key] = time.perf_counter() - t - 0.27  # less stall()'s own waits (0.12 + 0.15 s)


add = viewer.window.add_plugin_dock_widget
timed(lambda: docks.update(reader=add("napari-cpadv", "Study reader")[1]), "reader dock open")
w = docks["reader"]
timed(lambda: w.start(str(root / "study"), "path01", code), "reader Start")
for n in range(4):
    w._keys["Y"]()
    timed(w.submit, f"reader Next {n + 1}")
print(json.dumps({k: round(v, 3) for k, v in out.items()}), flush=True)
viewer.close()
"""
)


def _child(code: str, args: list[str], repo: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=repo,  # "-c" puts the working folder first on the path
        env={**os.environ, "PYTHONPATH": repo},
        capture_output=True,
        text=True,
        check=True,
    )
    line = [x for x in done.stdout.splitlines() if x.startswith("{")][-1]
    print(line, flush=True)
    return json.loads(line)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3, help="fresh processes (default 3)")
    parser.add_argument("--repo", default=str(ROOT), help="the checkout the children import")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from _timing import run_header

    print(json.dumps(run_header(repo=args.repo)), flush=True)
    sample = ROOT / "sample_data" / "synthetic_he.tif"
    rows = []
    for _ in range(args.runs):
        row = _child(CHILD, [str(sample)], args.repo)
        row |= {f"{k}, plugin": v for k, v in _child(FIRST_OPEN, ["plugin"], args.repo).items()}
        data = str(ROOT / "sample_data")
        row |= {
            f"{k}, napari": v for k, v in _child(FIRST_OPEN, ["napari", data], args.repo).items()
        }
        rows.append(row | _child(READER, [], args.repo))
    medians = {k: round(statistics.median(r[k] for r in rows), 3) for k in rows[0]}
    print(json.dumps({"median": medians}), flush=True)


if __name__ == "__main__":
    main()

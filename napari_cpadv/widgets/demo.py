"""``make demo``: the sample slide in napari with the plugin loaded.

With a display, the viewer stays open. With ``--headless`` (``make demo`` passes it when
there is no display and runs this on a virtual one) it writes a screenshot of the viewer
and a JSON report to the output folder, then exits.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m napari_cpadv.widgets.demo")
    parser.add_argument("--out", default="demo-output", help="folder for the headless pictures")
    parser.add_argument("--headless", action="store_true", help="screenshot and exit")
    args = parser.parse_args(argv)

    import napari
    from qtpy.QtWidgets import QApplication

    from napari_cpadv._reader import scale_bar
    from napari_cpadv.slide.synthetic import sample_slide_path

    path = sample_slide_path()
    viewer = napari.Viewer(title="napari-cpadv demo", show=not args.headless)
    t0 = time.perf_counter()
    layers = viewer.open(path, plugin="napari-cpadv")
    bar = scale_bar(viewer)
    bar.visible = True
    bar.unit = "um"
    viewer.reset_view()
    QApplication.processEvents()
    shot = viewer.screenshot(canvas_only=False, flash=False)
    first_frame_s = time.perf_counter() - t0
    if not args.headless:
        napari.run()
        return 0
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    from PIL import Image

    Image.fromarray(shot).save(out / "viewer.png")
    layer = layers[0]
    report = {
        "slide": str(path),
        "layer": layer.name,
        "levels": len(layer.data),
        "level_shapes": [list(d.shape) for d in layer.data],
        "scale_um": list(map(float, layer.scale)),
        "units": [str(u) for u in layer.units],
        "seconds_to_first_frame": round(first_frame_s, 3),
        "screenshot": str(out / "viewer.png"),
    }
    (out / "report.json").write_text(json.dumps(report, indent=2))
    sys.stdout.write(json.dumps(report, indent=2) + "\n")
    viewer.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Training streamed from slides (issue 18, item 4): tiles per second the loader delivers
against the tiles per second the model's training step consumes, side by side in one run.

Data: `make weights`' five synthetic training slides (build/weights-data/slide11-15.tif,
8,192 x 8,192, level 2, 128-pixel tiles: the shipped DAE's setting) indexed by
`stream_tiles` (which reads every tile once, so this process's tile cache is warm and the
workers' are cold); the loader is `models.data.batch_images` with 0, 1 and 2 worker
processes over one shuffled pass in batches of 8; the step is the DAE's training step
(noise, forward, MSE, backward, Adam) on batches of 8 already in memory. The loader
keeps up when its rate is at least the step's. Prints one JSON object a line.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from _timing import run_header

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT / "build" / "weights-data"


def _rate(batches: int, batch: int, seconds: float) -> float:
    return batches * batch / seconds


def main() -> None:
    from napari_cpadv.annotations.stream import SlideData
    from napari_cpadv.device import to_tensor
    from napari_cpadv.models.data import batch_images, stream_tiles
    from napari_cpadv.models.detector import make
    from napari_cpadv.progress import drive

    print(json.dumps(run_header()), flush=True)
    srcs = [
        SlideData(str(DATA / f"slide{k}.tif"), str(DATA / f"slide{k}.xml")) for k in range(11, 16)
    ]
    t0 = time.perf_counter()
    data = drive(stream_tiles(srcs, level=2, size=128))
    print(json.dumps({"index": {"tiles": len(data), "seconds": time.perf_counter() - t0}}))
    rng = np.random.default_rng(0)
    batch = 8  # one shuffled pass over every tile, as an epoch reads them
    batches = np.array_split(rng.permutation(len(data)), len(data) // batch)
    n = len(batches)
    for workers in (0, 1, 2):  # the workers' start (a fork server, imports) apart
        t = time.perf_counter()
        first = 0.0
        for _ in batch_images(data.images, batches, workers=workers):
            first = first or time.perf_counter()
        end = time.perf_counter()
        row = {
            "workers": workers,
            "first_batch_s": first - t,
            "tiles_per_s": _rate(n - 1, batch, end - first),
        }
        print(json.dumps({"loader": row}), flush=True)
    model = make("dae").autoencoder.train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    pixels = [to_tensor(data.images[b]) for b in batches[:10]]  # read before timing
    t = time.perf_counter()
    for x in pixels:
        loss = torch.nn.functional.mse_loss(model(x + 0.1 * torch.randn_like(x)), x)
        opt.zero_grad()
        loss.backward()
        opt.step()
    rate = _rate(len(pixels), batch, time.perf_counter() - t)
    print(json.dumps({"dae_step": {"tiles_per_s": rate}}), flush=True)


if __name__ == "__main__":
    main()

"""Everything that needs a GPU, in one prepared run (issue 32, item 3): run it the first
time a GPU is lent, and commit its rows with the card named.

Sections, each timed and capped (``--seconds``), each recorded even when it fails or is
cut short, written to ``OUT/gpu.json`` after every section, and ``OUT/rows.md`` (the
BENCHMARKS.md rows) at the end:

1. ``slide``: paint a synthetic slide (default Camelyon16-sized, 100,000 x 200,000 at 15 %
   tissue, on every core);
2. ``heatmaps``: the shipped ``dae`` and ``sparse`` (LCA run to convergence) heatmaps of
   its tissue at level 2: blocks a second, and whether the whole slide finished within the
   cap (else the seconds it would take at the measured rate, marked as an estimate);
3. ``attacks``: every per-tile attack of the registry that each detector takes, 100 steps
   on 512 x 512 tiles read from the slide (ResNet-18 at the paper's width, 64, on 224
   patches), tiles a second beside the bare forward + backward cost of the same steps;
4. ``resnet18_epoch``: seconds per epoch of the full-width ResNet-18 (seed 001's training:
   AdaDelta, batch 16) on 1,357 patches, seed 001's training fold;
5. ``reproduce``: the full-size steps of ``cpadv reproduce`` that fit the time left
   (``--only``; resumable, so a later run continues them).

CI runs it on the CPU at toy sizes (``--device cpu --tiny``, tests/test_gpu_script.py) so
it cannot rot. ``benchmarks/gpu.sh`` sets up first and says how long that took.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RMS_25 = 25 / (512 * 512 * 3) ** 0.5  # seed 000's L2 = 25 on a 512 x 512 x 3 tile, per pixel


@dataclass(frozen=True)
class Scale:
    slide: tuple[int, int]
    level: int
    tile: int
    patch: int
    tiles: int
    steps: int
    width: int
    patches: int
    seconds: float  # the cap of each heatmap
    block: int | None  # cells a heatmap block's side (None: 512-pixel blocks)
    flags: tuple[str, ...]
    reproduce: tuple[str, ...]  # the steps of `cpadv reproduce` tried, in this order
    lca_iterations: int | None = None  # a cap on the shipped LCA's (None: its own, 500)


FULL = Scale(
    (100_000, 200_000),
    2,
    512,
    224,
    16,
    100,
    64,
    1357,
    120.0,
    None,
    (),
    ("seed000/fig10", "seed001/fig4"),
)
# toy sizes, for CI on a CPU: every section must run, nothing must converge
TINY = Scale((2048, 2048), 1, 64, 64, 1, 3, 4, 16, 1.5, 8, ("--tiny",), ("seed000/dae",), 10)


class Run:
    """The results so far, written after every section."""

    def __init__(self, out: Path, device: str, scale: Scale, tiny: bool) -> None:
        import torch

        self.out, self.device, self.scale = out, device, scale
        gpu = torch.cuda.get_device_name() if device.startswith("cuda") else None
        self.doc: dict[str, Any] = {
            "machine": gpu or f"{platform.machine()} CPU, {torch.get_num_threads()} threads",
            "device": device,
            "torch": torch.__version__,
            "date": time.strftime("%Y-%m-%d"),
            "commit": _commit(),
            "scale": "tiny" if tiny else "full",
            "sections": {},
        }

    @contextmanager
    def section(self, name: str) -> Iterator[dict[str, Any]]:
        record: dict[str, Any] = {}
        started = time.perf_counter()
        try:
            yield record
        except Exception as exc:  # a section that fails is recorded and the next one runs
            record["failed"] = f"{type(exc).__name__}: {exc}"
        record["seconds"] = round(time.perf_counter() - started, 2)
        self.doc["sections"][name] = record
        (self.out / "gpu.json").write_text(json.dumps(self.doc, indent=2, default=float))
        print(f"{name}: {json.dumps(record, default=float)}", flush=True)


def _commit() -> str:
    done = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    )
    return done.stdout.strip() or "unknown"


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def paint(run: Run, record: dict[str, Any]) -> Any:
    from napari_cpadv.slide import open_slide
    from napari_cpadv.slide.synthetic import make_slide

    path = run.out / f"slide_{run.scale.slide[0]}x{run.scale.slide[1]}.tif"
    if not path.is_file():
        make_slide(
            path, shape=run.scale.slide, seed=16, tissue_fraction=0.15, workers=os.cpu_count()
        )
    record.update(shape=list(run.scale.slide), path=str(path))
    return open_slide(path)


def _shipped(run: Run, name: str) -> Any:
    from napari_cpadv.models.weights import resolve

    detector = resolve(name, None)
    if run.scale.lca_iterations and hasattr(detector, "lca"):
        detector.lca.iterations = run.scale.lca_iterations
    return detector.to(run.device).eval()


def heatmaps(run: Run, slide: Any, record: dict[str, Any]) -> None:
    from napari_cpadv.inference.heatmap import heatmap

    for name in ("dae", "sparse"):
        detector = _shipped(run, name)
        work = heatmap(
            detector,
            slide,
            level=run.scale.level,
            scope="tissue",
            block=run.scale.block,
            device=run.device,
            batch=4,
        )
        started, done, total = time.perf_counter(), 0, 0
        for p in work:
            done, total = p.step, p.total
            if time.perf_counter() - started > run.scale.seconds:
                work.close()
                break
        _sync(run.device)
        took = time.perf_counter() - started
        rate = done / took if took > 0 else 0.0
        record[name] = {
            "level": run.scale.level,
            "blocks": total,
            "blocks_done": done,
            "blocks_per_s": rate,
            "complete": done == total,
            "whole_slide_s": took if done == total else None,
            "whole_slide_s_estimate": None if done == total or not rate else total / rate,
        }


def _tiles(slide: Any, level: int, side: int, n: int) -> Any:
    """``n`` tiles of ``side`` at ``level`` where the slide has tissue, as (N, 3, S, S)."""
    import numpy as np
    import torch

    from napari_cpadv.slide.tissue import tissue_mask

    g, last = slide.geometry[level], len(slide.geometry) - 1
    coarse = slide.geometry[last]
    mask = tissue_mask(slide.read_region(last, 0, 0, coarse.rows, coarse.cols))
    rows, cols = np.nonzero(mask)
    step = (g.rows / mask.shape[0], g.cols / mask.shape[1])
    picks = np.random.default_rng(0).choice(len(rows), size=n, replace=len(rows) < n)
    images = []
    for k in picks:
        r = int(min(max(rows[k] * step[0] - side / 2, 0), g.rows - side))
        c = int(min(max(cols[k] * step[1] - side / 2, 0), g.cols - side))
        images.append(slide.read_region(level, r, c, side, side))
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float().div(255)


def _bare(model: Any, x: Any, steps: int) -> None:
    """The reference: ``steps`` forward + backward passes of the model, gradient to ``x``."""
    import torch

    for _ in range(steps):
        d = torch.zeros_like(x, requires_grad=True)
        torch.autograd.grad(model(x + d).float().sum(), d)


def attacks(run: Run, slide: Any, record: dict[str, Any]) -> None:
    import torch

    from napari_cpadv.attacks.base import AttackSpec
    from napari_cpadv.attacks.objectives import objective_for
    from napari_cpadv.attacks.projections import Budget
    from napari_cpadv.attacks.registry import per_tile, registry
    from napari_cpadv.attacks.unrolled import ThroughLCA
    from napari_cpadv.models.detector import make
    from napari_cpadv.progress import drive

    s = run.scale
    cells = _tiles(slide, s.level, s.tile, s.tiles).to(run.device)
    patches = _tiles(slide, 0, s.patch, s.tiles).to(run.device)
    models = {
        "dae": (_shipped(run, "dae"), cells),
        "sparse": (_shipped(run, "sparse"), cells),
        f"resnet18 (width {s.width})": (make("resnet18", width=s.width), patches),
    }
    for label, (model, x) in models.items():
        model = model.to(run.device).eval()
        objective = objective_for(model, x)
        for name in per_tile():
            attack = registry()[name]
            norm = "l2" if "l2" in attack.norms else attack.norms[0]
            budget = Budget(norm, RMS_25 if norm == "l2" else 8 / 255, "per_pixel")
            spec = AttackSpec(name, budget, s.level, steps=s.steps, tile=s.tile)
            try:
                attack.check(model, spec)
            except ValueError as exc:
                record[f"{label} {name}"] = {"skipped": str(exc)}
                continue
            _sync(run.device)
            started = time.perf_counter()
            # an unrolled LCA keeps a chunk's potentials per 10 iterations: at the papers'
            # 512 atoms on 512-pixel tiles some 20 GB a tile, so those attacks go one by one
            one_by_one = isinstance(attack, ThroughLCA)
            drive(attack.craft(model, x, objective, spec, batch=1 if one_by_one else len(x)))
            _sync(run.device)
            took = time.perf_counter() - started
            row: dict[str, Any] = {"tiles": len(x), "side": x.shape[-1], "steps": s.steps}
            row["tiles_per_s"] = len(x) / took
            if attack.gradient and not getattr(model, "gradient_free", False):
                started = time.perf_counter()
                _bare(model, x, attack.iterations(spec))
                _sync(run.device)
                row["over_forward_backward"] = took / (time.perf_counter() - started)
            record[f"{label} {name}"] = row
            torch.cuda.empty_cache() if run.device.startswith("cuda") else None


def resnet_epoch(run: Run, slide: Any, record: dict[str, Any]) -> None:
    import numpy as np

    from napari_cpadv.models.data import TileSet
    from napari_cpadv.models.detector import make
    from napari_cpadv.models.train import train_resnet
    from napari_cpadv.progress import drive

    s = run.scale
    x = _tiles(slide, 0, s.patch, s.patches)
    images = (x.permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8)
    n = len(images)
    tumour = np.where(np.arange(n) % 2 == 0, 5, 0)  # a balanced set: only the time is read
    empty = np.zeros((n, s.patch // 4, s.patch // 4), bool)
    data = TileSet(images, empty, np.zeros(n), tumour, tumour, tuple(map(str, range(n))))
    model = make("resnet18", width=s.width)
    started = time.perf_counter()
    drive(train_resnet(model, data, epochs=1, batch=16, device=run.device))
    _sync(run.device)
    record.update(
        width=s.width, patches=n, side=s.patch, seconds_per_epoch=time.perf_counter() - started
    )


def reproduce(run: Run, record: dict[str, Any], left: Callable[[], float]) -> None:
    out = run.out / "reproduce"
    for step in run.scale.reproduce:
        if left() < 30:
            record[step] = {"skipped": "no time left in this run"}
            continue
        paper = step.split("/")[0]
        argv = ["reproduce", paper, "--out", str(out / paper), "--device", run.device]
        argv += [*run.scale.flags, "--only", step]
        try:
            done = subprocess.run(
                [sys.executable, "-m", "napari_cpadv.cli", *argv],
                capture_output=True,
                text=True,
                timeout=left(),
            )
        except subprocess.TimeoutExpired:
            record[step] = {"stopped": "out of time: run the script again to resume it"}
            continue
        if done.returncode:
            record[step] = {"failed": done.stderr.strip().splitlines()[-1:]}
            continue
        steps = json.loads((out / paper / "results.json").read_text())["steps"]
        record[step] = {name: round(v["seconds"], 1) for name, v in steps.items()}
    failed = [step for step, r in record.items() if "failed" in r]
    if failed:
        raise RuntimeError(f"cpadv reproduce failed at {', '.join(failed)}")


def rows(doc: dict[str, Any]) -> str:
    """The BENCHMARKS.md rows of a run."""
    head = (
        f"{doc['machine']} ({doc['device']}), torch {doc['torch']}, {doc['date']}, "
        f"commit {doc['commit']}, scale {doc['scale']}"
    )
    lines = [f"Measured on {head}.", "", "| section | item | value |", "| --- | --- | --- |"]
    for section, record in doc["sections"].items():
        for item, value in record.items():
            lines.append(f"| {section} | {item} | {json.dumps(value, default=float)} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cuda", help="cuda (default) or cpu")
    ap.add_argument("--tiny", action="store_true", help="toy sizes: seconds on a CPU (CI)")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "_work" / "gpu"))
    ap.add_argument("--minutes", type=float, default=9.0, help="wall time for the whole run")
    ap.add_argument("--setup-seconds", type=float, default=None, help="(gpu.sh) its set-up")
    ap.add_argument(
        "--slide",
        default=None,
        metavar="ROWSxCOLS",
        help="the painted slide's level 0 (default 100000x200000; --tiny 2048x2048)",
    )
    args = ap.parse_args(argv)
    deadline = time.perf_counter() + 60 * args.minutes
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    scale = TINY if args.tiny else FULL
    if args.slide:
        rows_, _, cols_ = args.slide.partition("x")
        scale = replace(scale, slide=(int(rows_), int(cols_)))
    run = Run(out, args.device, scale, args.tiny)
    if args.setup_seconds is not None:
        run.doc["sections"]["setup"] = {"seconds": args.setup_seconds}
    slide = None
    with run.section("slide") as record:
        slide = paint(run, record)
    if slide is not None:
        with run.section("heatmaps") as record:
            heatmaps(run, slide, record)
        with run.section("attacks") as record:
            attacks(run, slide, record)
        with run.section("resnet18_epoch") as record:
            resnet_epoch(run, slide, record)
    with run.section("reproduce") as record:
        reproduce(run, record, lambda: deadline - time.perf_counter())
    (out / "rows.md").write_text(rows(run.doc))
    failed = [n for n, r in run.doc["sections"].items() if "failed" in r]
    print(f"wrote {out / 'gpu.json'} and {out / 'rows.md'}; failed: {failed or 'none'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

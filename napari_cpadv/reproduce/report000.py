"""Seed 000's part of the report: its rows, figures and checks from the steps' results."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from napari_cpadv.reproduce import compare000 as C
from napari_cpadv.reproduce import figures as F
from napari_cpadv.reproduce.compare001 import TINY_NOTE, row


def _notes(scale: str, source: Any) -> str:
    parts = []
    if source.camelyon is None:
        parts.append("synthetic slides, not Camelyon16: not comparable in value")
    if scale == "quick":
        parts.append("--quick: smaller tiles, fewer atoms, epochs and iterations")
    elif scale == "tiny":
        parts.append(TINY_NOTE)
    return "; ".join(parts) or "the paper's sizes on Camelyon16"


def seed000_section(
    root: Path, results: dict[str, Any], scale: str, source: Any
) -> dict[str, Any]:
    sec: dict[str, Any] = {"rows": [], "figures": {}, "checks": [], "note": _notes(scale, source)}
    for name, published in (
        ("dae", C.PUBLISHED["clean"]["dae"]),
        ("sparse", C.PUBLISHED["clean"]["sparse"]),
    ):
        r = results.get(f"seed000/{name}")
        if r:
            metrics = r["metrics"]
            sec["rows"].append(
                row(
                    f"§2.7 {name} AUC-PR on the held-out slide's tiles",
                    published,
                    metrics.get("aucpr"),
                    f"null model there: {metrics.get('null_aucpr', float('nan')):.3f}",
                    sec["note"],
                )
            )
    held = results.get("seed000/dae") or results.get("seed000/sparse")
    if held and "null_aucpr" in held["metrics"]:
        sec["rows"].append(
            row(
                "§2.7 null model AUC-PR on the held-out slide's tiles",
                C.PUBLISHED["null"],
                held["metrics"]["null_aucpr"],
                "the share of tumour cells among them",
                sec["note"],
            )
        )
    pics = results.get("seed000/fig2_4_5")
    if pics:
        _pictures(sec, root)
    r10 = results.get("seed000/fig10")
    if r10:
        sec["rows"] += C.fig10(r10, sec["note"])
        sec["checks"] += C.checks(r10)
        sec["checks"] += [
            {"experiment": "Fig. 10", "check": w, "passed": False} for w in r10["warnings"]
        ]
        if r10.get("aucpr"):
            F.add(
                sec,
                root,
                "Fig. 10: AUC-PR clean, under noise and under each attack",
                F.fig10(r10),
                "seed000_fig10",
            )
        _perturbations(sec, root, r10)
    return sec


def _pictures(sec: dict[str, Any], root: Path) -> None:
    """Figs. 2, 4 and 5 from the PNG files of the step."""
    from PIL import Image

    folder = root / "seed000/fig2_4_5"
    load = lambda name: np.asarray(Image.open(folder / f"{name}.png"))  # noqa: E731
    recon = [
        (t, load(n))
        for t, n in (
            ("clean", "clean"),
            ("sparse", "sparse"),
            ("DAE", "dae"),
            ("noisy", "noisy"),
            ("sparse, noisy", "sparse_noisy"),
            ("DAE, noisy", "dae_noisy"),
        )
    ]
    F.add(sec, root, "Fig. 2: reconstructions", F.pictures(recon, 3), "seed000_fig2")
    feats = sorted(
        p.stem
        for p in folder.glob("*.png")
        if "kernel" in p.stem or "feature" in p.stem or "dictionary" in p.stem
    )
    if feats:
        fig = F.pictures([(n, load(n)) for n in feats], len(feats))
        F.add(sec, root, "Figs. 4 and 5: first-layer features", fig, "seed000_fig4_5")


def _perturbations(sec: dict[str, Any], root: Path, r10: dict[str, Any]) -> None:
    """Figs. 6-9 on the first attack tile: heatmaps, δ amplified, images side by side."""
    folder = root / "seed000/fig10"
    with np.load(folder / "tiles.npz") as z:
        x, labels = z["x"][0], z["labels"][0]
        deltas = {s: z[s][0] for s in r10["sources"] if s in z.files}
    image = np.transpose(x, (1, 2, 0))
    heat = [(f"{n} heatmap", np.load(folder / f"heatmap_{n}.npy")) for n in r10["detectors"]]
    fig6 = [("original", image), ("annotation", labels.astype(float)), *heat]
    F.add(sec, root, "Fig. 6: cell-level heatmaps", F.pictures(fig6, 4), "seed000_fig6")
    amp = [(f"δ crafted on {s}, amplified", F.amplified(d)) for s, d in deltas.items()]
    F.add(
        sec,
        root,
        "Figs. 7 and 8: the perturbations, amplified",
        F.pictures(amp, 2),
        "seed000_fig7_8",
    )
    side = [("original", image)] + [
        (f"attacked ({s})", np.clip(image + np.transpose(d, (1, 2, 0)), 0, 1))
        for s, d in deltas.items()
    ]
    F.add(
        sec,
        root,
        "Fig. 9: original and adversarial side by side",
        F.pictures(side, 3),
        "seed000_fig9",
    )

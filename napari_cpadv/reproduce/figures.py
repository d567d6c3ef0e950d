"""The papers' figures drawn with matplotlib (Agg), each written as PNG and SVG."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

GROUP_STYLE = {
    "TP": ("true positive", "#d62728", "o"),
    "TN": ("true negative", "#1f77b4", "o"),
    "adv+": ("adversarial positive", "#ff9896", "x"),
    "adv-": ("adversarial negative", "#aec7e8", "x"),
}


def _figure(width: float, height: float, columns: int = 1, rows: int = 1) -> tuple[Any, Any]:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    return fig, fig.subplots(rows, columns, squeeze=False)


def save(fig: Any, folder: Path, name: str) -> list[str]:
    """``name.png`` and ``name.svg`` in ``folder``; their names."""
    from napari_cpadv.files import write_figure

    folder.mkdir(parents=True, exist_ok=True)
    return [write_figure(fig, folder / f"{name}.{ext}").name for ext in ("png", "svg")]


def add(sec: dict[str, Any], root: Path, title: str, fig: Any, name: str) -> None:
    """Save ``fig`` under ``root/figures`` and list it in the report section ``sec``."""
    sec["figures"][title] = save(fig, root / "figures", name)


def fig2a(r: dict[str, Any]) -> Any:
    """UMAP of penultimate features with the attack's track (seed 001 Fig. 2a)."""
    fig, ax = _figure(5.5, 4.5)
    ax = ax[0, 0]
    emb, groups = np.asarray(r["embedding"]), np.asarray(r["groups"])
    for g, (label, colour, marker) in GROUP_STYLE.items():
        pts = emb[groups == g]
        if len(pts):
            ax.scatter(pts[:, 0], pts[:, 1], s=14, c=colour, marker=marker, label=label)
    track = np.asarray(r["track"])
    ax.plot(track[:, 0], track[:, 1], "-o", c="k", ms=3, lw=1, label="track")
    ax.annotate("start", track[0], fontsize=8)
    ax.set(title="(a) UMAP of penultimate features", xticks=[], yticks=[])
    ax.legend(fontsize=7, loc="best")
    return fig


def fig2b(r: dict[str, Any]) -> Any:
    """PCA loss landscape with the training trajectory (seed 001 Fig. 2b)."""
    fig, ax = _figure(5, 4.5)
    ax = ax[0, 0]
    a, b, loss = np.asarray(r["alpha"]), np.asarray(r["beta"]), np.asarray(r["loss"])
    levels = np.quantile(loss, np.linspace(0, 1, 15))
    cs = ax.contour(a, b, loss, levels=np.unique(levels), cmap="viridis", linewidths=0.8)
    ax.clabel(cs, fontsize=6, fmt="%.2f")
    t = np.asarray(r["trajectory"])
    ax.plot(t[:, 0], t[:, 1], "-o", c="r", ms=3, lw=1)
    ratio = r.get("explained_variance_ratio", [0, 0])
    ax.set(
        title="(b) loss landscape and training trajectory",
        xlabel=f"1st PCA component: {ratio[0]:.0%}",
        ylabel=f"2nd: {ratio[1]:.0%}",
    )
    return fig


def fig4(r: dict[str, Any]) -> Any:
    """Success rate against budget under L0, L1, L2 and L∞ (seed 001 Fig. 4)."""
    norms = [n for n in ("l0", "l1", "l2", "linf") if n in r]
    fig, axes = _figure(3 * len(norms), 3, columns=len(norms))
    for ax, norm in zip(axes[0], norms, strict=True):
        rows = r[norm]["rows"]
        x = [row["budget"] for row in rows]
        ax.plot(x, [row["success"] for row in rows], "-o", label="float δ")
        ax.plot(x, [row["success_8bit"] for row in rows], "--s", label="saved, 8 bits")
        ax.set(title=norm.upper().replace("LINF", "L∞"), xlabel=r[norm]["unit"], ylim=(-0.03, 1.03))
        ax.set_xscale("log")
    axes[0, 0].set_ylabel("success rate")
    axes[0, 0].legend(fontsize=7)
    return fig


def _examples(rows: list[tuple[str, dict[str, Any]]], folder: Path) -> Any:
    """Per row: original, perturbed, δ amplified, saliency before and after."""
    from PIL import Image

    titles = ("original", "perturbed", "perturbation", "saliency before", "saliency after")
    fig, axes = _figure(11, 2.3 * len(rows), columns=5, rows=len(rows))
    for k, (name, ex) in enumerate(rows):
        files = ex["files"]
        delta = np.load(folder / files["perturbation"])
        shown = np.clip(127.5 + ex["amplification"] * delta, 0, 255).astype(np.uint8)
        pictures = [
            np.asarray(Image.open(folder / files["original"])),
            np.asarray(Image.open(folder / files["adversarial"])),
            shown,
            np.load(folder / files["saliency_before"]),
            np.load(folder / files["saliency_after"]),
        ]
        for j, (ax, pic) in enumerate(zip(axes[k], pictures, strict=True)):
            ax.imshow(pic, cmap="magma" if pic.ndim == 2 else None)
            ax.set(xticks=[], yticks=[])
            extra = ""
            if j == 0:
                extra = f"\n{name}: p={ex['probability_before']:.2f}"
            elif j == 1:
                extra = f"\np={ex['probability_after']:.2f}"
            elif j == 2:
                extra = f"\n×{ex['amplification']:.0f}"
            ax.set_title(titles[j] + extra, fontsize=8)
    return fig


def examples(r: dict[str, Any], folder: Path) -> Any:
    """Seed 001 Figs. 1 and 3: a positive and a negative the attack flips."""
    names = {1: "tumour → normal", 0: "normal → tumour"}
    return _examples([(names[ex["label"]], ex) for ex in r["examples"]], folder)


def fig5(r: dict[str, Any], folder: Path) -> Any:
    """Seed 001 Fig. 5: the universal perturbation on one held-out positive."""
    return _examples([("universal δ", r["example"])], folder)


BAR_COLOURS = {"clean": "#1f77b4", "noise": "#2ca02c", "dae": "#ff7f0e", "sparse": "#d62728"}


def fig10(r: dict[str, Any]) -> Any:
    """Seed 000 Fig. 10: AUC-PR of each detector clean, under noise and under each attack,
    beside the null model (grey)."""
    fig, ax = _figure(6, 3.5)
    ax = ax[0, 0]
    auc = r["aucpr"]
    detectors = r["detectors"]
    bars = [("clean", "clean")] + [(f"noise ({s})", "noise") for s in r["sources"]]
    bars += [(s, s) for s in r["sources"]]
    width = 0.8 / len(bars)
    for k, (row_name, colour) in enumerate(bars):
        xs = [i + (k - len(bars) / 2 + 0.5) * width for i in range(len(detectors))]
        label = {"clean": "original", "noise": "noise"}.get(colour, f"attack on {colour}")
        shown = label if colour != "noise" or row_name.endswith(f"({r['sources'][0]})") else None
        ax.bar(
            xs, [auc[row_name][d] for d in detectors], width, color=BAR_COLOURS[colour], label=shown
        )
    ax.bar([len(detectors)], [r["null_aucpr"]], 0.4, color="grey", label="null model")
    ax.set_xticks(range(len(detectors) + 1), [*detectors, "null"])
    ax.set(ylabel="cell-level AUC-PR", ylim=(0, 1.05), title="AUC-PR on the held-out tiles")
    ax.legend(fontsize=7, ncols=2)
    return fig


def pictures(images: list[tuple[str, np.ndarray]], columns: int) -> Any:
    """Named pictures in a grid (a heatmap in [0, 1] drawn with its colour scale)."""
    rows = -(-len(images) // columns)
    fig, axes = _figure(2.6 * columns, 2.6 * rows, columns=columns, rows=rows)
    for ax in axes.flat:
        ax.set_axis_off()
    for ax, (title, pic) in zip(axes.flat, images, strict=False):
        if pic.ndim == 2:
            ax.imshow(pic, cmap="gray", vmin=0, vmax=1)
        else:
            ax.imshow(pic)
        ax.set_title(title, fontsize=8)
    return fig


def amplified(delta: np.ndarray) -> np.ndarray:
    """δ ``(3, S, S)`` in [0, 1] units as an RGB picture, its largest magnitude at the ends."""
    d = np.transpose(delta, (1, 2, 0))
    peak = float(np.abs(d).max()) or 1.0
    return np.clip(0.5 + 0.5 * d / peak, 0, 1)

"""The Plots dock's figures, drawn on plain matplotlib ``Figure`` objects (no pyplot, no
GUI backend: the dock puts them on a Qt canvas, the tests and the demo save them).

* ``pr_curves``: precision-recall curves before and after an attack, per detector;
* ``success_curve``: success (and AUC-PR) against budget from a ``cpadv sweep`` report
  (seed 001 Fig. 4);
* ``damage_bars``: seed 000 Fig. 10, the AUC-PR of each detector under clean, noise and
  each attack, from a ``cpadv transfer`` report.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure


def pr_curves(curves: dict[str, dict[str, Any]], fig: Figure | None = None) -> Figure:
    """``curves[detector] = {"before": score, "after": score}`` with ``score`` as
    ``inference.detect.score_against`` returns it (or None)."""
    fig = fig or Figure(figsize=(5, 4))
    fig.clear()
    ax = fig.add_subplot()
    for k, (name, pair) in enumerate(curves.items()):
        colour = f"C{k}"
        for when, style in (("before", "-"), ("after", "--")):
            s = pair.get(when)
            if not s:
                continue
            ax.step(
                s["recall"],
                s["precision"],
                style,
                where="post",
                color=colour,
                label=f"{name} {when} (AUC-PR {s['aucpr']:.3f})",
            )
        null = next((pair[w]["null_aucpr"] for w in ("before", "after") if pair.get(w)), None)
        if null is not None:
            ax.axhline(null, color=colour, lw=0.5, ls=":")
    ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.02))
    ax.set_title("cell-level precision-recall, before and after the attack")
    if ax.has_data():
        ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    return fig


def attack_pr_curves(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``pr_curves`` of a ``cpadv attack`` report: its ``aucpr[detector]`` holds the
    scores of the clean and the attacked slide."""
    return {
        name: {"before": pair.get("clean"), "after": pair.get("attacked")}
        for name, pair in (report.get("aucpr") or {}).items()
    }


def success_curve(sweep: dict[str, Any], fig: Figure | None = None) -> Figure:
    """Success rate (and the detector's AUC-PR, with noise for comparison) against budget."""
    fig = fig or Figure(figsize=(5, 4))
    fig.clear()
    ax = fig.add_subplot()
    budgets = sweep["budgets"]
    ax.plot(budgets, sweep["success_rates"], "o-", color="C3", label="success (attack)")
    rows = sweep["rows"]
    if rows and "noise" in rows[0]:
        ax.plot(budgets, [r["noise"]["success_rate"] for r in rows], "o:", color="C7",
                label="success (noise, same norm)")  # fmt: skip
    if rows and rows[0].get("aucpr") is not None:
        ax.plot(budgets, [r["aucpr"] for r in rows], "s-", color="C0", label="AUC-PR (attack)")
        if "noise" in rows[0]:
            ax.plot(budgets, [r["noise"]["aucpr"] for r in rows], "s:", color="C9",
                    label="AUC-PR (noise)")  # fmt: skip
    unit = "total" if sweep["unit"] == "total" else "per pixel"
    ax.set(xlabel=f"{sweep['norm'].upper()} budget ({unit})", ylim=(-0.02, 1.02))
    ax.set_title(f"{sweep['attack']} on {sweep['detector']}: success against budget")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def damage_bars(transfer: dict[str, Any], fig: Figure | None = None) -> Figure:
    """Seed 000 Fig. 10: grouped bars, one group per scored detector, one bar per
    condition (clean, noise of each source's norm, each source's attack)."""
    import numpy as np

    table = transfer["aucpr"] or transfer["success"]
    what = "AUC-PR" if transfer["aucpr"] else "success rate"
    fig = fig or Figure(figsize=(6, 4))
    fig.clear()
    ax = fig.add_subplot()
    conditions = list(table)
    detectors = transfer["detectors"]
    width = 0.8 / len(conditions)
    x = np.arange(len(detectors))
    for k, cond in enumerate(conditions):
        label = cond if cond in ("clean",) or cond.startswith("noise") else f"attack on {cond}"
        values = [table[cond][d] if table[cond][d] is not None else np.nan for d in detectors]
        bars = ax.bar(x + (k - (len(conditions) - 1) / 2) * width, values, width, label=label)
        ax.bar_label(bars, fmt="%.2f", fontsize=6)
    ax.set_xticks(x, [f"scored on {d}" for d in detectors])
    ax.set(ylabel=what, ylim=(0, 1.1))
    ax.set_title("damage by condition (seed 000 Fig. 10)")
    ax.legend(fontsize=7, ncols=2)
    fig.tight_layout()
    return fig


def save(fig: Figure, path: str | os.PathLike[str]) -> Path:
    """Save as ``.png`` or ``.svg`` (by extension), atomically (``files.write_figure``)."""
    from napari_cpadv.files import write_figure

    return write_figure(fig, path)

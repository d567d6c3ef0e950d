"""Seed 001's published numbers beside a run's, each with its difference and a reading.

A row is ``{"item", "published", "run", "difference", "reading", "note"}``; ``published``
and ``run`` are numbers where the paper gives one (a rate as a fraction), else text.
"""

from __future__ import annotations

from typing import Any

import numpy as np

PUBLISHED = {
    "patches_positive": 1157,
    "patches_negative": 878,
    "accuracy_mean": 0.89,
    "accuracy_std": 0.014,
    "aucroc_mean": 0.96,
    "aucroc_std": 0.004,
    "fig4_success": 1.0,  # every constrained budget of Fig. 4
    "universal_train": 619 / 702,
    "universal_test": 319 / 376,
    "study_cases": 20,
}
TINY_NOTE = "--tiny: toy sizes, a smoke test of every step: its numbers say nothing"


def row(item: str, published: Any, run: Any, reading: str, note: str = "") -> dict[str, Any]:
    diff = None
    if isinstance(published, int | float) and isinstance(run, int | float):
        diff = float(run) - float(published)
    return {
        "item": item,
        "published": published,
        "run": run,
        "difference": diff,
        "reading": reading,
        "note": note,
    }


def _within(run: float, published: float, tol: float) -> str:
    if not np.isfinite(run):
        return "no value"
    if abs(run - published) <= tol:
        return f"agrees with the paper (within {tol:g})"
    return f"{'higher' if run > published else 'lower'} than the paper (by more than {tol:g})"


def table1a(r: dict[str, Any], note: str) -> list[dict[str, Any]]:
    acc, auc = r["accuracy"], r["aucroc"]
    return [
        row(
            "Table 1a accuracy (mean)",
            PUBLISHED["accuracy_mean"],
            acc["mean"],
            _within(acc["mean"], 0.89, 0.03),
            note,
        ),
        row(
            "Table 1a accuracy (SD over run means)",
            PUBLISHED["accuracy_std"],
            acc["std_runs"],
            f"SD over the {r['runs'] * r['folds']} folds: {acc['std_folds']:.3f}",
            note,
        ),
        row(
            "Table 1a AUC-ROC (mean)",
            PUBLISHED["aucroc_mean"],
            auc["mean"],
            f"{_within(auc['mean'], 0.96, 0.02)}; "
            f"{'above' if auc['mean'] > 0.95 else 'not above'} the paper's 'AUC > 0.95'",
            note,
        ),
        row(
            "Table 1a AUC-ROC (SD over run means)",
            PUBLISHED["aucroc_std"],
            auc["std_runs"],
            f"SD over the folds: {auc['std_folds']:.3f}",
            note,
        ),
    ]


def fig4(r: dict[str, Any], note: str) -> list[dict[str, Any]]:
    out = []
    for norm in ("l0", "l1", "l2", "linf"):
        rows = r.get(norm, {}).get("rows", [])
        if not rows:
            continue
        least = rows[0]
        every = min(x["success"] for x in rows)
        text = (
            f"{least['success']:.0%} at the smallest budget ({least['budget']:g}, "
            f"{r[norm]['unit']}), {least['success_8bit']:.0%} once saved in 8 bits; "
            f"{'every' if every >= 1 else 'not every'} budget flips every patch"
        )
        out.append(
            row(
                f"Fig. 4 {norm.upper()} success at the smallest budget",
                PUBLISHED["fig4_success"],
                least["success"],
                text,
                note,
            )
        )
    linf = {x["budget"]: x for x in r.get("linf", {}).get("rows", [])}
    if 0.5 in linf:
        out.append(
            row(
                "§3.2 L∞ 0.5 grey level: success",
                1.0,
                linf[0.5]["success"],
                "the paper: all attacks succeed at 0.5",
                note,
            )
        )
    l0 = {x["budget"]: x for x in r.get("l0", {}).get("rows", [])}
    if 0.2 in l0:
        out.append(
            row(
                "§3.2 L0 20 % of pixels: success",
                1.0,
                l0[0.2]["success"],
                "the paper: consistently deceived at 20 %",
                note,
            )
        )
    return out


def universal(r: dict[str, Any], note: str) -> list[dict[str, Any]]:
    train, held = r["train"], r["held_out"]
    return [
        row(
            "§3.3 universal: training positives flipped",
            PUBLISHED["universal_train"],
            train["success_rate"],
            f"{train['images']} training positives (paper: 702)",
            note,
        ),
        row(
            "§3.3 universal: held-out positives flipped (among those right)",
            PUBLISHED["universal_test"],
            held["success_rate_among_right"],
            f"noise of the same L2 norm flips {held['noise_success_rate_among_right']:.0%}",
            note,
        ),
    ]


def umap_reading(r: dict[str, Any]) -> dict[str, Any]:
    """Whether adversarial negatives lie nearer the true negatives than the true positives
    (and adversarial positives nearer the true positives): seed 001 §3.4's observation."""
    emb, groups = np.asarray(r["embedding"]), np.asarray(r["groups"])
    centre = {g: emb[groups == g].mean(0) for g in ("TP", "TN") if (groups == g).any()}
    out: dict[str, Any] = {}
    for adv, near, far in (("adv-", "TN", "TP"), ("adv+", "TP", "TN")):
        pts = emb[groups == adv]
        if len(pts) and near in centre and far in centre:
            d_near = float(np.linalg.norm(pts - centre[near], axis=1).mean())
            d_far = float(np.linalg.norm(pts - centre[far], axis=1).mean())
            out[adv] = {"nearer_own": d_near < d_far, "to_" + near: d_near, "to_" + far: d_far}
    return out


def landscape_reading(r: dict[str, Any]) -> dict[str, Any]:
    """Whether training ends in a low region: the final loss against the grid's lowest."""
    if "skipped" in r:
        return {"skipped": r["skipped"]}
    grid = np.asarray(r["loss"])
    final = r["trajectory_loss"][-1]
    return {
        "final_loss": final,
        "grid_min": float(grid.min()),
        "grid_max": float(grid.max()),
        "start_loss": r["trajectory_loss"][0],
        "low": bool(final <= np.quantile(grid, 0.1) + 1e-9),
    }

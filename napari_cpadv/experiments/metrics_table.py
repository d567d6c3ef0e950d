"""The metrics table of a run: its columns, their names in words, the image metrics of a
perturbation, and its CSV text (one copy for the CLI, the docks and the exports)."""

from __future__ import annotations

import csv
import io
from typing import Any

import numpy as np

METRIC_COLUMNS = (
    "detector",
    "attacked",
    "aucpr_before",
    "aucpr_after",
    "success_rate",
    "l0_pixels",
    "l0_fraction",
    "l1_total",
    "l1_mad",
    "l2_total",
    "l2_rms",
    "linf",
    "linf_255",
    "psnr_db",
    "ssim",
)

# What each metric is, with its unit, in the words the Attack dock's table shows.
METRIC_LABELS = {
    "attacked": "attacked detector",
    "aucpr_before": "AUC-PR before (0-1)",
    "aucpr_after": "AUC-PR after (0-1)",
    "success_rate": "tiles fooled (fraction)",
    "l0_pixels": "pixels changed (L0)",
    "l0_fraction": "pixels changed (fraction)",
    "l1_total": "L1, total ([0, 1] values)",
    "l1_mad": "mean absolute change ([0, 1])",
    "l2_total": "L2, total ([0, 1] values)",
    "l2_rms": "RMS change ([0, 1])",
    "linf": "largest change ([0, 1])",
    "linf_255": "largest change (grey levels)",
    "psnr_db": "PSNR (dB; higher: less visible)",
    "ssim": "SSIM (1: identical)",
}


def image_metrics(original: np.ndarray, perturbed: np.ndarray) -> dict[str, float]:
    """Norms of δ in both units (``attacks.projections.norms``) with PSNR and SSIM."""
    import torch

    from napari_cpadv.attacks.projections import norms
    from napari_cpadv.metrics.image import psnr, ssim

    delta = (perturbed.astype(np.float32) - original.astype(np.float32)) / 255
    n = norms(torch.from_numpy(delta).permute(2, 0, 1)[None])
    out = {k: v[0] for k, v in n.items()}
    out["psnr_db"] = psnr(original, perturbed)
    out["ssim"] = ssim(original, perturbed)
    return out


def metrics_csv(rows: list[dict[str, Any]]) -> str:
    """The metrics table as CSV text (what Copy puts on the clipboard, and Save writes)."""
    buf = io.StringIO()
    writer = csv.DictWriter(
        buf, fieldnames=METRIC_COLUMNS, extrasaction="ignore", lineterminator="\n"
    )
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in METRIC_COLUMNS})
    return buf.getvalue()

"""Scores on numpy arrays: cell-level AUC-PR with its null model, AUC-ROC (no torch, no Qt)."""

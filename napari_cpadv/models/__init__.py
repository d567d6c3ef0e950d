"""The seeds' detectors as torch modules, their weights and their training loops (no Qt)."""

"""Experiments over slides: runs (the one run folder layout)."""

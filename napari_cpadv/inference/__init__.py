"""Detectors over slides: seamless tiled heatmaps, on demand for the viewer or in batch."""

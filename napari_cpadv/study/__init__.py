"""Blinded perceptibility studies (seed 001 §2.3): build, read, resume, unblind, analyse.

Nothing here imports Qt or napari; the reader dock drives these objects.
"""

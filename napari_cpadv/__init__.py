"""napari-cpadv: adversarial audits of tumour detectors on whole-slide images."""

__version__ = "0.1.0"

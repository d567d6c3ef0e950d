"""The docks' weights field: it completes the names of the weights shipped for the chosen
detector, which every dock accepts as well as a file."""

from __future__ import annotations

from typing import Any


def offer_weights(field: Any, name: str) -> None:
    """``field`` (a weights line edit) completes the names of the weights shipped for
    detector ``name`` (``dae-he``: trained on real H&E), each accepted as well as a file."""
    from qtpy.QtWidgets import QCompleter

    from napari_cpadv.models.weights import shipped_names

    names = shipped_names(name)
    completer = QCompleter(names, field)
    completer.setCompletionMode(QCompleter.UnfilteredPopupCompletion)
    field.setCompleter(completer)
    real = [n for n in names if n.endswith("-he")]
    field.setToolTip(
        "A .safetensors weights file, or the name of shipped weights"
        + (f" ({', '.join(names)}; {real[0]}: trained on real H&E)" if real else "")
        + "; empty: the weights trained on painted slides"
    )

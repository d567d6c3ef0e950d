"""The attacks by name: what each is, in one place.

The command line's choices, the Attack dock's list and its tooltip, and the checks of
``AttackSpec`` read this table, so that adding an attack adds one entry here (and its
module) instead of a name in four lists.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class AttackInfo:
    """``name``; ``summary`` (a line for help and tooltips, with its seed); ``per_tile``:
    each tile gets its own δ (``universal`` learns one δ for all); ``gradient``: it needs
    the detector's gradient to the image (the sparse coder has none)."""

    name: str
    summary: str
    per_tile: bool = True
    gradient: bool = True


REGISTRY: dict[str, AttackInfo] = {
    a.name: a
    for a in (
        AttackInfo("fgsm", "seed 000's iterative FGSM, rescaled to the budget"),
        AttackInfo("pgd", "seed 001's projected gradient descent under any norm"),
        AttackInfo("universal", "one δ learnt over all tiles (seed 001)", per_tile=False),
        AttackInfo("latent", "seed 000's attack on the sparse code", gradient=False),
        AttackInfo("noise", "Gaussian noise of the same L2 norm: the control", gradient=False),
    )
}
NAMES: tuple[str, ...] = tuple(REGISTRY)
PER_TILE: tuple[str, ...] = tuple(n for n, a in REGISTRY.items() if a.per_tile)


def describe() -> str:
    """One line per attack: ``name: summary`` (for help texts and tooltips)."""
    return "; ".join(f"{a.name}: {a.summary}" for a in REGISTRY.values())

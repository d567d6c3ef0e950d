"""The attacks by name, found where they are defined.

Every module of this package that defines ``ATTACK`` (an instance following
:class:`napari_cpadv.attacks.base.Attack`) is an attack; adding one is adding its module.
The command line's choices, the Attack dock's list and tooltip and ``AttackSpec``'s checks
read this registry. Finding the attacks imports their modules (and torch), so it happens
on first use, not when the command line or the plugin is imported.
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from napari_cpadv.attacks.base import Attack


@cache
def registry() -> dict[str, Attack]:
    """Name -> attack, in the order of the names (``fgsm`` first, the Attack dock's default)."""
    import napari_cpadv.attacks as package

    found: dict[str, Attack] = {}
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        attack = getattr(module, "ATTACK", None)
        if attack is None:
            continue
        if attack.name in found:
            raise RuntimeError(f"two attack modules define the attack {attack.name!r}")
        found[attack.name] = attack
    return dict(sorted(found.items()))


def names() -> tuple[str, ...]:
    """Every attack's name."""
    return tuple(registry())


def per_tile() -> tuple[str, ...]:
    """The attacks that give each tile its own δ (all but ``universal``)."""
    return tuple(n for n, a in registry().items() if a.per_tile)


def describe() -> str:
    """One line per attack: ``name: summary`` (for help texts and tooltips)."""
    return "; ".join(f"{a.name}: {a.summary}" for a in registry().values())


def __getattr__(name: str) -> Any:
    # REGISTRY, NAMES and PER_TILE read like constants but are found on first use
    if name == "REGISTRY":
        return registry()
    if name == "NAMES":
        return names()
    if name == "PER_TILE":
        return per_tile()
    raise AttributeError(name)

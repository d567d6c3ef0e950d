"""One registry of attacks: the command line's choices and the dock's list come from it."""

from __future__ import annotations

import argparse

import pytest

from napari_cpadv.attacks.base import AttackSpec
from napari_cpadv.attacks.projections import Budget
from napari_cpadv.attacks.registry import NAMES, PER_TILE, REGISTRY, describe
from napari_cpadv.cli import build_parser


def _choices(command: str) -> tuple[str, ...]:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    parser = sub.choices[command]
    action = next(a for a in parser._actions if a.dest == "attack")
    return tuple(action.choices)


def test_the_cli_offers_what_the_registry_holds():
    assert _choices("attack") == _choices("sweep") == NAMES
    assert _choices("transfer") == PER_TILE and "universal" not in PER_TILE
    assert all(a.summary in describe() for a in REGISTRY.values())


@pytest.mark.parametrize("name", NAMES)
def test_every_registered_attack_is_a_valid_spec(name):
    spec = AttackSpec(name, Budget("l2", 25.0), level=2)  # type: ignore[arg-type]
    assert spec.attack == name


def registry_table() -> list[str]:
    """The README's attack table, as the registry writes it."""
    rows = []
    for name, a in REGISTRY.items():
        delta = "each tile its own δ" if a.per_tile else "one δ for every tile"
        rows.append(f"| `{name}` | {a.summary} | {delta} | {', '.join(a.norms)} |")
    return rows


def test_the_readme_lists_the_attacks_the_registry_holds():
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    begin, end = "<!-- attack registry: begin -->", "<!-- attack registry: end -->"
    table = readme[readme.index(begin) + len(begin) : readme.index(end)].strip().splitlines()
    assert table[2:] == registry_table(), "README's attack table: regenerate it from the registry"

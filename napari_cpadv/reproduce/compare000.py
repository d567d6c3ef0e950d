"""Seed 000's published numbers (its §2.7, §3 and Fig. 10) beside a run's."""

from __future__ import annotations

from typing import Any

from napari_cpadv.reproduce.compare001 import row

PUBLISHED: dict[str, Any] = {
    "null": 0.27,
    "clean": {"dae": 0.97, "sparse": 0.94},  # Fig. 10, blue bars (§3.3, §3.4)
    "own_attack": {"dae": 0.69, "sparse": 0.65},  # each under the attack crafted on it
    "transfer_drop": {"sparse": 0.04, "dae": 0.06},  # the other attack's drop, §3.3-3.4
}

OTHER = {"dae": "sparse", "sparse": "dae"}  # the source of the attack that transfers


def fig10(r: dict[str, Any], note: str) -> list[dict[str, Any]]:
    """Fig. 10's bars: clean, noise, each attack, the null model."""
    auc = r.get("aucpr") or {}
    out = [
        row(
            "Fig. 10 null model AUC-PR on the attack tiles (grey bar)",
            PUBLISHED["null"],
            r["null_aucpr"],
            "their share of tumour cells: the tiles were chosen for tumour",
            note,
        )
    ]
    if not auc:
        return out
    other = OTHER
    for name in ("dae", "sparse"):
        clean, own = auc["clean"][name], auc[name][name]
        noise = auc[f"noise ({name})"][name]
        out += [
            row(
                f"Fig. 10 {name} AUC-PR, clean",
                PUBLISHED["clean"][name],
                clean,
                f"{'above' if clean > 0.9 else 'not above'} the paper's 0.90",
                note,
            ),
            row(
                f"Fig. 10 {name} AUC-PR under its own attack",
                PUBLISHED["own_attack"][name],
                own,
                f"{'below' if own < 0.7 else 'not below'} the paper's 0.70 "
                f"(a drop of {clean - own:.3f})",
                note,
            ),
            row(
                f"Fig. 10 {name} AUC-PR under noise of that attack's norm",
                "≈ clean",
                noise,
                f"a drop of {clean - noise:.3f}: the paper's noise had almost no effect",
                note,
            ),
            row(
                f"Fig. 10 {name} drop under the attack crafted on {other[name]}",
                PUBLISHED["transfer_drop"][name],
                clean - auc[other[name]][name],
                "the paper: each detector resists the other's attack",
                note,
            ),
        ]
    return out


def checks(r: dict[str, Any]) -> list[dict[str, Any]]:
    """Noise against each white-box attack, and transfer against white-box (damage)."""
    auc = r.get("aucpr") or {}
    out: list[dict[str, Any]] = []
    if not auc:
        return out
    for name in ("dae", "sparse"):
        clean = auc["clean"][name]
        own, noise = clean - auc[name][name], clean - auc[f"noise ({name})"][name]
        out.append(
            {
                "experiment": f"Fig. 10 {name}",
                "check": "noise",
                "passed": noise <= own + 0.01,
                "noise_drop": noise,
                "attack_drop": own,
            }
        )
        other = OTHER[name]
        transferred = clean - auc[other][name]
        out.append(
            {
                "experiment": f"Fig. 10 {name}",
                "check": "transfer below white-box",
                "passed": transferred <= own + 0.01,
                "transfer_drop": transferred,
            }
        )
    return out

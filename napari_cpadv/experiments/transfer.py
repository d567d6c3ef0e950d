"""Transfer matrices (seed 000 Fig. 10): attacks crafted on each source detector, every
detector scored on each δ, beside noise of each attack's norm."""

from __future__ import annotations

import time
from typing import Any

import torch

from napari_cpadv.attacks.base import AttackSpec, Scored, quantise
from napari_cpadv.attacks.objectives import logits_of, objective_for
from napari_cpadv.experiments.scoring import condition, logits_aucpr, scorable
from napari_cpadv.experiments.tiles import Tiles
from napari_cpadv.models.detector import Detector
from napari_cpadv.progress import Work, within


def transfer(
    detectors: dict[str, Detector],
    tiles: Tiles,
    specs: dict[str, AttackSpec],
    *,
    device: Any = "cpu",
    batch: int = 4,
    keep: dict[str, torch.Tensor] | None = None,
    cluster: Any = None,
) -> Work[dict[str, Any]]:
    """Craft ``specs[source]`` on each source detector and score every detector on each δ
    (seed 000 Fig. 10: FGSM crafted on the DAE, the latent attack on the sparse coder).

    Rows are conditions (``clean``, ``noise`` of each source's achieved L2 norm, and the
    attack crafted on each source); columns are the scored detectors (cell detectors of
    one cell size). ``aucpr[row][col]`` with ground truth, ``success[row][col]`` always
    (against each detector's own objective). Warnings name a transfer that hurts a
    detector more than the white-box attack on it, and noise that beats an attack.
    ``keep``, when given, receives every condition's δ (``(N, 3, S, S)``, by row name), for
    the seed's pictures of them (its Figs. 7-9). With ``cluster``
    (``inference.cluster.Cluster``) each source's attack is crafted on its workers, one a
    task; scoring runs here.
    """
    _check(detectors, specs)
    sources = list(specs)
    started = time.perf_counter()
    x = tiles.x.to(device)
    for d in detectors.values():
        d.to(device).eval()
    # the clean tiles' logits, once: for the objectives and the clean scores
    clean_logits = {n: logits_of(d, x, torch.zeros_like(x)) for n, d in detectors.items()}
    objectives = {
        n: objective_for(d, x, tiles.labels, clean=clean_logits[n]) for n, d in detectors.items()
    }
    warnings: list[str] = []
    labels = scorable(tiles.labels, warnings)
    crafted = yield from _craft_each(detectors, x, objectives, specs, batch, (cluster, tiles))
    deltas = _conditions(x, crafted, specs)
    # logits already computed: the clean tiles, and each source on its own δ
    known = {("clean", n): clean_logits[n] for n in detectors}
    known.update({(n, n): crafted[n].logits for n in sources})
    clean = (
        {n: logits_aucpr(known["clean", n], labels) for n in detectors}
        if labels is not None
        else dict.fromkeys(detectors)
    )
    table = {
        row: {
            n: condition(d, x, delta, objectives[n], labels, clean[n], known.get((row, n)))
            for n, d in detectors.items()
        }
        for row, delta in deltas.items()
    }
    warnings += _warnings(table, list(detectors), sources)
    if keep is not None:
        keep.update({row: delta.cpu() for row, delta in deltas.items()})
    return {
        "detectors": list(detectors),
        "sources": sources,
        "attacks": {name: _described(sp) for name, sp in specs.items()},
        "level": tiles.level,
        "tiles": [list(p) for p in tiles.positions],
        "device": str(device),
        "norms": {name: crafted[name].norms for name in sources},
        "aucpr": _column(table, "aucpr") if labels is not None else None,
        # Fig. 10's grey bar: a detector that calls every cell tumour scores the prevalence
        "null_aucpr": float(labels.mean()) if labels is not None else None,
        "success": _column(table, "success_rate"),
        "warnings": warnings,
        "seconds": time.perf_counter() - started,
    }


def _column(table: dict[str, dict[str, dict[str, Any]]], key: str) -> dict[str, Any]:
    """One value of every condition (row) and detector (column)."""
    return {r: {n: c[key] for n, c in cols.items()} for r, cols in table.items()}


def _check(detectors: dict[str, Detector], specs: dict[str, AttackSpec]) -> None:
    if any(d.output != "cells" for d in detectors.values()):
        raise ValueError(
            "transfer is scored on cell heatmaps of one level; "
            + ", ".join(n for n, d in detectors.items() if d.output != "cells")
            + " works on level-0 patches"
        )
    if len({d.cell for d in detectors.values()}) > 1:
        raise ValueError("the detectors' cells differ in size; score them on separate runs")
    unknown = [s for s in specs if s not in detectors]
    if unknown:
        raise ValueError(f"sources {unknown} are not among the scored detectors {list(detectors)}")


def _craft_each(
    detectors: dict[str, Detector],
    x: torch.Tensor,
    objectives: dict[str, Any],
    specs: dict[str, AttackSpec],
    batch: int,
    where: tuple[Any, Tiles],
) -> Work[dict[str, Scored]]:
    """Each source's attack crafted on it, under one monotone bar: here, or one a task on
    the cluster of ``where`` (``(cluster, tiles)``; the objectives are rebuilt there)."""
    cluster, tiles = where
    if cluster is not None:
        from napari_cpadv.experiments.chunks import Craft, craft_on

        crafts = {name: Craft(name, spec, batch) for name, spec in specs.items()}
        sent = {name: detectors[name] for name in specs}
        done = yield from craft_on(cluster, sent, x, tiles.labels, crafts)
        return {name: done[name] for name in specs}  # in the sources' order
    crafted: dict[str, Scored] = {}
    for k, name in enumerate(specs):
        share = (k / len(specs), (k + 1) / len(specs))
        spec = specs[name]
        work = spec.runner.craft(detectors[name], x, objectives[name], spec, batch=batch)
        crafted[name] = yield from within(work, *share, source=name)
    return crafted


def _conditions(
    x: torch.Tensor, crafted: dict[str, Scored], specs: dict[str, AttackSpec]
) -> dict[str, torch.Tensor]:
    """The rows: clean, noise of each source's achieved norm, then each source's δ."""
    from napari_cpadv.attacks.noise import noise_like

    deltas: dict[str, torch.Tensor] = {"clean": torch.zeros_like(x)}
    for name, res in crafted.items():
        deltas[f"noise ({name})"] = quantise(x, noise_like(res.delta, x, seed=specs[name].seed))
    for name, res in crafted.items():
        deltas[name] = res.delta
    return deltas


def _warnings(
    table: dict[str, dict[str, dict[str, Any]]], targets: list[str], sources: list[str]
) -> list[str]:
    """Noise that beats a white-box attack, and a transfer that hurts a detector more than
    the white-box attack on it."""
    from napari_cpadv.attacks.evaluate import sanity

    warnings: list[str] = []
    for target in targets:
        for source in sources:
            cell = table[source][target]
            noise_cell = table[f"noise ({source})"][target]
            if source == target:
                warnings += [
                    f"{source}: {w}"
                    for w in sanity(attack_damage=cell["damage"], noise_damage=noise_cell["damage"])
                ]
            elif target in sources and cell["damage"] > table[target][target]["damage"] + 0.01:
                warnings.append(
                    f"the attack crafted on {source} hurts {target} more ({cell['damage']:.3f}) "
                    f"than the white-box attack on {target} ({table[target][target]['damage']:.3f})"
                )
    return warnings


def _described(spec: AttackSpec) -> dict[str, Any]:
    budget = {"norm": spec.budget.norm, "value": spec.budget.value, "unit": spec.budget.unit}
    return {"attack": spec.attack, "budget": budget, "steps": spec.steps, "seed": spec.seed}

"""``reproduce``: run every step of the papers asked for into one folder, then the report."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from napari_cpadv.progress import Work, within

PAPERS = ("seed000", "seed001", "real")  # real: both papers' attacks on real tissue
SCALES = ("full", "quick", "tiny")  # the papers' sizes; minutes on 2 CPU cores; seconds


def reproduce(
    papers: tuple[str, ...],
    out: str | os.PathLike[str],
    *,
    data: list[str] | None = None,
    scale: str = "full",
    device: Any = "cpu",
    weights: dict[str, str] | None = None,
    seed: int = 0,
    command: str | None = None,
    cluster: Any = None,
    only: list[str] | None = None,
) -> Work[dict[str, Any]]:
    """Reproduce ``papers`` into ``out`` at ``scale`` (``SCALES``): finished steps kept, the
    rest run, the report written (``report.html``, ``results.json``, figures). Returns the
    report's summary. With ``only`` (step names such as ``seed001/fig4``), only those steps
    and the steps they read may run; the others are kept where they finished before and
    otherwise reported as not yet run.
    With ``cluster`` (``inference.cluster.Cluster``) the independent parts (Table 1a's
    folds, Fig. 10's attacks) run on its workers (the same numbers, to float rounding where
    the workers use fewer torch threads; see ``experiments.crossval``).

    The papers and the data are checked at once, before the work starts (a ``ValueError``
    or ``FormatError``); the work itself is the generator returned.
    """
    from napari_cpadv.reproduce import real, seed000, seed001
    from napari_cpadv.reproduce.data import Source
    from napari_cpadv.reproduce.steps import Steps, needed

    unknown = [p for p in papers if p not in PAPERS]
    if unknown:
        raise ValueError(f"unknown paper {unknown[0]!r}: choose from {', '.join(PAPERS)}")
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}: choose from {', '.join(SCALES)}")
    modules = {
        "seed000": (seed000, seed000.Seed000),
        "seed001": (seed001, seed001.Seed001),
        "real": (real, real.Real),
    }
    after = {k: v for p in papers for k, v in modules[p][1].AFTER.items()}
    asked = None if only is None else needed(list(only), after)
    source = Source(data)
    if not source.synthetic:
        lacking = [
            f"{p} needs a {kind} folder"
            for p, kind, have in (
                ("seed000", "Camelyon16", source.camelyon),
                ("seed001", "PanNuke", source.pannuke),
            )
            if p in papers and have is None
        ]
        if lacking:
            raise ValueError("; ".join(lacking) + " beside the one given to --data")
    steps = Steps(Path(out), only=asked)
    parts: list[Any] = []
    common = {"seed": seed, "device": device, "weights": weights, "cluster": cluster}
    for paper in papers:
        module, cls = modules[paper]
        sizes = getattr(module, scale.upper())
        parts += cls(steps, source, sizes, **common).parts()
    return _run(steps, parts, papers=papers, scale=scale, source=source, command=command)


def _run(steps: Any, parts: list[Any], **report: Any) -> Work[dict[str, Any]]:
    from napari_cpadv.reproduce.report import write_report
    from napari_cpadv.reproduce.steps import plan

    steps.out.mkdir(parents=True, exist_ok=True)
    yield from within(plan(steps, parts), 0, 0.98)
    return write_report(steps.out, steps, **report)

"""A reproduction's report: ``results.json`` (every number), ``report.html`` (each table and
figure beside the published value, with the difference and a reading), the figures as PNG
and SVG under ``figures/``, and the command and versions that made them."""

from __future__ import annotations

import html
import math
from pathlib import Path
from typing import Any

from napari_cpadv.reproduce import compare001 as C


def _notes(scale: str, source: Any) -> str:
    parts = []
    if source.pannuke is None:
        parts.append("synthetic patches, not PanNuke: not comparable in value")
    if scale == "quick":
        parts.append("--quick: a smaller model, data and attack")
    elif scale == "tiny":
        parts.append(C.TINY_NOTE)
    parts.append("no ImageNet pretraining (no weights offline)")
    return "; ".join(parts)


def seed001_section(
    root: Path, results: dict[str, Any], scale: str, source: Any
) -> dict[str, Any]:
    """Seed 001's rows, figures and checks from its steps' results."""
    sec: dict[str, Any] = {"rows": [], "figures": {}, "checks": [], "note": _notes(scale, source)}
    data = results.get("seed001/data")
    if data:
        sec["rows"] += [
            C.row(
                "§2.1 positive patches",
                C.PUBLISHED["patches_positive"],
                data["positive"],
                _short(data, "positive") or data["source"],
                sec["note"],
            ),
            C.row(
                "§2.1 negative patches",
                C.PUBLISHED["patches_negative"],
                data["negative"],
                _short(data, "negative") or data["rule"],
                sec["note"],
            ),
        ]
    if "seed001/table1a" in results:
        sec["rows"] += C.table1a(results["seed001/table1a"], sec["note"])
    for part in (_fig4, _fig2, _examples, _universal, _study):
        part(sec, root, results)
    return sec


def _short(data: dict[str, Any], kind: str) -> str:
    """The reading of a patch count below what the run asked for (else empty)."""
    asked = data.get("asked", {}).get(kind)
    if asked is None or data[kind] >= asked:
        return ""
    return f"fewer than the {asked} asked: the data ran out ({data['source']})"


def _fig4(sec: dict[str, Any], root: Path, results: dict[str, Any]) -> None:
    from napari_cpadv.reproduce import figures as F

    r4 = results.get("seed001/fig4")
    if not r4:
        return
    sec["rows"] += C.fig4(r4, sec["note"])
    F.add(sec, root, "Fig. 4: success rate against budget", F.fig4(r4), "seed001_fig4")
    for norm in ("l0", "l1", "l2", "linf", "none"):
        for name, check in r4.get(norm, {}).get("checks", {}).items():
            if isinstance(check, dict) and "passed" in check:
                sec["checks"].append(
                    {"experiment": f"Fig. 4 {norm.upper()}", "check": name, **check}
                )


def _fig2(sec: dict[str, Any], root: Path, results: dict[str, Any]) -> None:
    from napari_cpadv.reproduce import figures as F

    r2a, r2b = results.get("seed001/fig2a"), results.get("seed001/fig2b")
    if r2a and "skipped" in r2a:
        sec["rows"].append(C.row("Fig. 2a UMAP", "drawn", "not drawn", r2a["skipped"]))
    elif r2a:
        reading = C.umap_reading(r2a)
        text = ", ".join(f"{g} nearer its own side: {v['nearer_own']}" for g, v in reading.items())
        sec["rows"].append(
            C.row(
                "Fig. 2a adversarial points beside the class they are taken for",
                "yes",
                text or "no flipped patch",
                "§3.4",
                sec["note"],
            )
        )
        F.add(sec, root, "Fig. 2a: UMAP with the attack's track", F.fig2a(r2a), "seed001_fig2a")
    if r2b:
        got = C.landscape_reading(r2b)
        text = got.get("skipped") or (
            f"final loss {got['final_loss']:.3f} (grid {got['grid_min']:.3f} to "
            f"{got['grid_max']:.3f}); in the grid's lowest tenth: {got['low']}"
        )
        sec["rows"].append(
            C.row(
                "Fig. 2b training ends in a low, stable region",
                "yes",
                text,
                "PCA of the weights (Li et al.)",
                sec["note"],
            )
        )
        if "skipped" not in r2b:
            F.add(sec, root, "Fig. 2b: PCA loss landscape", F.fig2b(r2b), "seed001_fig2b")


def _examples(sec: dict[str, Any], root: Path, results: dict[str, Any]) -> None:
    from napari_cpadv.reproduce import figures as F

    r13 = results.get("seed001/fig1_3")
    if r13 and r13["examples"]:
        fig = F.examples(r13, root / "seed001/fig1_3")
        F.add(sec, root, "Figs. 1 and 3: flipped examples with saliency", fig, "seed001_fig1_3")


def _universal(sec: dict[str, Any], root: Path, results: dict[str, Any]) -> None:
    from napari_cpadv.reproduce import figures as F

    ru = results.get("seed001/universal")
    if not ru:
        return
    sec["rows"] += C.universal(ru, sec["note"])
    fig = F.fig5(ru, root / "seed001/universal")
    F.add(sec, root, "Fig. 5: the universal perturbation", fig, "seed001_fig5")
    held = ru["held_out"]
    noise = held["noise_success_rate_among_right"]
    rate = held["success_rate_among_right"]
    passed = None if not math.isfinite(rate) else noise <= rate + 0.01
    sec["checks"].append(
        {"experiment": "§3.3 universal", "check": "noise", "passed": passed, "success": noise}
    )


def _study(sec: dict[str, Any], root: Path, results: dict[str, Any]) -> None:
    rs = results.get("seed001/study")
    if not rs:
        return
    sec["rows"] += [
        C.row(
            "§2.3 study cases (right, then flipped)",
            C.PUBLISHED["study_cases"],
            rs["cases"],
            f"build it: {rs['build']}",
            sec["note"],
        ),
        C.row(
            "Table 1b pathologist true positives of 20",
            "17/18 perturbed vs 20 original (DESIGN.md's reading)",
            "needs readers",
            "a blinded study of the pairs above gives it",
        ),
    ]


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return "n/a" if not math.isfinite(value) else f"{value:.3f}"
    return html.escape(str(value)) if value is not None else ""


def _difference(r: dict[str, Any]) -> str:
    d = r["difference"]
    if d is None:
        return ""
    counts = isinstance(r["published"], int) and isinstance(r["run"], int)
    return f"{int(d):+d}" if counts else f"{d:+.3f}"


def _verdict(passed: bool | None) -> str:
    if passed is None:
        return "n/a (nothing to compare)"
    return "pass" if passed else "<span class='fail'>FAIL</span>"


def _tr(cells: list[Any], tag: str = "td") -> str:
    return "<tr>" + "".join(f"<{tag}>{c}</{tag}>" for c in cells) + "</tr>"


def _table(head: list[str], rows: list[list[Any]]) -> str:
    return "<table>" + _tr(head, "th") + "".join(_tr(r) for r in rows) + "</table>"


def to_html(document: dict[str, Any]) -> str:
    """The report as one HTML page (its figures linked from ``figures/``)."""
    out = [
        "<!doctype html><meta charset='utf-8'><title>napari-cpadv reproduction</title>",
        "<style>body{font-family:sans-serif;max-width:70em}td,th{border:1px solid #ccc;"
        "padding:2px 6px}table{border-collapse:collapse}.fail{color:#b00}</style>",
        "<h1>Reproduction of the papers</h1>",
        f"<p>Command: <code>{html.escape(document['command'] or '')}</code></p>",
        f"<p>Data: {html.escape(document['data'])}</p>",
    ]
    for paper, sec in document["papers"].items():
        out.append(f"<h2>{paper}</h2><p><b>Comparability:</b> {html.escape(sec['note'])}</p>")
        rows = [
            [
                _cell(r["item"]),
                _cell(r["published"]),
                _cell(r["run"]),
                _difference(r),
                _cell(r["reading"]),
            ]
            for r in sec["rows"]
        ]
        head = sec.get("columns", ["published", "this run"])  # real: synthetic beside real
        out.append(_table(["item", *head, "difference", "reading"], rows))
        for title, files in sec["figures"].items():
            png = next(f for f in files if f.endswith(".png"))
            out.append(f"<h3>{html.escape(title)}</h3><img src='figures/{png}' width='100%'>")
        checks = [
            [
                _cell(c["experiment"]),
                _cell(c["check"]),
                "pass" if c["passed"] else "<span class='fail'>FAIL</span>",
            ]
            for c in sec["checks"]
        ]
        out.append("<h3>Sanity checks (Carlini et al.)</h3>")
        out.append(_table(["experiment", "check", "result"], checks))
    steps = [
        [_cell(n), f"{s['seconds']:.1f}", "kept" if s["kept"] else "ran"]
        for n, s in document["steps"].items()
    ]
    steps += [[_cell(n), "", "not yet run"] for n in document["pending"]]
    out.append("<h2>Steps</h2>" + _table(["step", "seconds", "this run"], steps))
    out.append("<h2>Versions</h2><pre>" + html.escape(str(document["versions"])) + "</pre>")
    return "\n".join(out) + "\n"


def write_report(
    root: Path,
    steps: Any,
    *,
    papers: tuple[str, ...],
    scale: str,
    source: Any,
    command: str | None,
) -> dict[str, Any]:
    """Write ``results.json`` and ``report.html`` into ``root``; returns the summary. Steps
    left pending (``Steps.pending``: a run limited to some steps) are listed as not yet
    run; their rows and figures are absent."""
    from napari_cpadv.files import provenance, versions, write_atomic, write_json
    from napari_cpadv.reproduce.report000 import seed000_section

    sections = {}
    if "seed000" in papers:
        sections["seed000"] = seed000_section(root, steps.results, scale, source)
    if "seed001" in papers:
        sections["seed001"] = seed001_section(root, steps.results, scale, source)
    if "real" in papers:
        from napari_cpadv.reproduce.report_real import real_section

        sections["real"] = real_section(steps.results, scale)
    document = {
        "command": command,
        "scale": scale,
        "quick": scale == "quick",
        "data": source.describe(),
        "papers": sections,
        "results": steps.results,
        "steps": {n: {"seconds": steps.seconds[n], "kept": n in steps.kept} for n in steps.results},
        "pending": steps.pending,
        "versions": versions(),
        "code": provenance(),
    }
    write_json(root / "results.json", document, default=_plain)
    write_atomic(root / "report.html", to_html(document).encode())
    failed = [c for s in sections.values() for c in s["checks"] if c["passed"] is False]
    return {
        "out": str(root),
        "report": str(root / "report.html"),
        "kept": steps.kept,
        "ran": steps.ran,
        "pending": steps.pending,
        "checks_failed": len(failed),
        "figures": sum(len(s["figures"]) for s in sections.values()),
    }


def _plain(value: Any) -> Any:
    """numpy scalars and arrays as JSON."""
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON")

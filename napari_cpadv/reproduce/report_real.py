"""The real-tissue section of a reproduction's report: seed 000's Fig. 10 and seed 001's
Fig. 4 on the carcinoma field's held-out stripes (``reproduce.real``), each row beside the
same number on the painted slides when this folder holds the papers' steps too."""

from __future__ import annotations

from typing import Any

from napari_cpadv.reproduce.compare001 import row

NOT_HERE = "not in this folder"  # the synthetic column when the papers' steps were not run
NOTE = (
    "real H&E: the held-out stripes of one 1,500 x 1,500 field of high-grade serous carcinoma "
    "(histolytics 0.3.0; nuclei segmented by a model and curated by its authors, not a "
    "pathologist's annotation), attacked through the committed *-he weights: a small, honest "
    "measurement, not a claim about Camelyon16 or PanNuke. Synthetic: this folder's seed000 "
    "and seed001 steps on painted slides (`cpadv reproduce all real`)"
)


def real_section(results: dict[str, Any], scale: str) -> dict[str, Any]:
    """Rows (synthetic beside real), checks and the note of the real-tissue steps."""
    note = NOTE + ("" if scale == "full" else f"; --{scale} sizes")
    if scale == "tiny":
        from napari_cpadv.reproduce.real import TINY

        note += (
            f" (sparse-he's LCA capped at {TINY.lca_iterations} iterations: the pipeline, "
            "not its numbers)"
        )
    sec: dict[str, Any] = {
        "rows": [],
        "figures": {},
        "checks": [],
        "note": note,
        "columns": ["synthetic", "real"],
    }
    data = results.get("real/data")
    if data:
        sec["rows"] += _data_rows(data, results)
    if results.get("real/fig10"):
        sec["rows"] += _fig10_rows(results["real/fig10"], results.get("seed000/fig10"))
    study = results.get("real/study")
    if study:
        synth = results.get("seed001/study")
        sec["rows"].append(
            row(
                "§2.3 study cases (right, then flipped)",
                synth["cases"] if synth else NOT_HERE,
                study["cases"],
                f"real: of the {study['positives']} positive patches attacked (the paper "
                f"chose 20), L∞ {study['budget_linf']:g} grey levels; build it: "
                f"{study['build']}",
            )
        )
    if results.get("real/fig4"):
        real4, synth4 = results["real/fig4"], results.get("seed001/fig4")
        sec["rows"] += _fig4_rows(real4, synth4)
        for norm in ("l0", "l1", "l2", "linf", "none"):
            for name, check in real4.get(norm, {}).get("checks", {}).items():
                if isinstance(check, dict) and "passed" in check:
                    experiment = f"real Fig. 4 {norm.upper()}"
                    sec["checks"].append({"experiment": experiment, "check": name, **check})
    return sec


def _data_rows(data: dict[str, Any], results: dict[str, Any]) -> list[dict[str, Any]]:
    t, p = data["tiles"], data["patches"]
    synth10 = results.get("seed000/fig10")
    synth4 = results.get("seed001/fig4")
    c0, c1 = data["stripes"]["dae"]["columns"]
    q0, q1 = data["stripes"]["resnet18"]["columns"]
    return [
        row(
            "Fig. 10 attack tiles",
            len(synth10["tiles"]) if synth10 else NOT_HERE,
            t["count"],
            f"real: {t['side']}-pixel tiles of level {t['level']} (1.0 µm per pixel), columns "
            f"{c0}-{c1} (held out by dae-he and sparse-he), {t['count']} of {t['of']} with the "
            f"most tumour: {t['tumour_cells']} tumour cells of {t['cells']}",
        ),
        row(
            "Fig. 4 attacked patches",
            synth4["patches"] if synth4 else NOT_HERE,
            p["count"],
            f"real: {p['side']}-pixel patches of level {p['level']}, columns {q0}-{q1} (held "
            f"out by resnet18-he), seed 001's rule: {p['positive']} positive, {p['negative']} "
            f"negative; {p['left_out']} of the stripe's {p['of']} left out (1-4 tumour nuclei)",
        ),
    ]


def _fig10_rows(real: dict[str, Any], synth: dict[str, Any] | None) -> list[dict[str, Any]]:
    out = []
    aucpr = real.get("aucpr") or {}
    for condition, scores in aucpr.items():
        for detector, value in scores.items():
            other = _get(synth, "aucpr", condition, detector)
            out.append(
                row(
                    f"Fig. 10 AUC-PR of {detector} under {condition}",
                    other,
                    value,
                    _fig10_reading(real, condition, detector),
                )
            )
    out.append(
        row(
            "Fig. 10 null model (tumour prevalence)",
            synth["null_aucpr"] if synth else NOT_HERE,
            real["null_aucpr"],
            "a detector that calls every cell tumour",
        )
    )
    for condition, seen in real.get("visibility", {}).items():
        psnr = "no change" if seen["psnr_db"] is None else f"{seen['psnr_db']:.1f} dB"
        out.append(
            row(
                f"Fig. 10 {condition}: SSIM of the saved tiles",
                "not measured",
                seen["ssim"],
                f"PSNR {psnr} (real)",
            )
        )
    return out


def _fig10_reading(real: dict[str, Any], condition: str, detector: str) -> str:
    success = _get(real, "success", condition, detector)
    if condition == "clean" or not isinstance(success, float):
        return "real: the held-out stripe's cells"
    return f"real: {success:.0%} of the tiles' objective met"


def _fig4_rows(real: dict[str, Any], synth: dict[str, Any] | None) -> list[dict[str, Any]]:
    out = []
    for norm in ("l0", "l1", "l2", "linf"):
        panel = real.get(norm)
        if not panel:
            continue
        mine = {r["budget"]: r for r in (synth or {}).get(norm, {}).get("rows", [])}
        for r in panel["rows"]:
            other = mine.get(r["budget"])
            psnr = "no change" if r.get("psnr_db") is None else f"{r['psnr_db']:.1f} dB"
            reading = (
                f"real: {r['success_8bit']:.0%} once saved in 8 bits; PSNR {psnr}, SSIM "
                f"{r['ssim']:.4f}"
            )
            if other is not None:
                reading += f" (synthetic 8-bit {other['success_8bit']:.0%})"
            out.append(
                row(
                    f"Fig. 4 {norm.upper()} {r['budget']:g} ({panel['unit']}): success",
                    other["success"] if other else NOT_HERE,
                    r["success"],
                    reading,
                )
            )
    return out


def _get(report: dict[str, Any] | None, key: str, condition: str, detector: str) -> Any:
    """``report[key][condition][detector]``, or why it is absent."""
    if not report:
        return NOT_HERE
    value = (report.get(key) or {}).get(condition, {}).get(detector)
    return "no such row" if value is None else value

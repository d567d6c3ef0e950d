"""Original/adversarial pairs a study is built from: a folder of ``<case>_original`` and
``<case>_adversarial`` images, or attack run folders (``experiments.runs.RunFolder``)."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from napari_cpadv.errors import CpadvError
from napari_cpadv.study.model import CONDITIONS, TUMOUR_CELLS, StudyError

PAIR_NAME = re.compile(r"(?P<case>.+)_(?P<condition>original|adversarial)\.(png|tif|tiff)", re.I)


LOOKS_LIKE_PAIR = re.compile(r".+_(original|adversarial)\.[A-Za-z0-9]+", re.I)


@dataclass(frozen=True)
class Pair:
    """One case: its original and adversarial images (files, or ``(rows, cols, 3)`` uint8
    arrays with ``sources`` naming where they came from), ground truth, attack parameters."""

    case: str
    original: Path | np.ndarray
    adversarial: Path | np.ndarray
    truth: Any = None
    attack: dict[str, Any] = field(default_factory=dict)
    sources: tuple[str, str] | None = None

    def image(self, condition: str) -> Path | np.ndarray:
        return self.original if condition == "original" else self.adversarial

    def source(self, condition: str) -> str:
        if self.sources is not None:
            return self.sources[CONDITIONS.index(condition)]
        return str(self.image(condition))


def pairs_from_folder(folder: str | os.PathLike[str]) -> list[Pair]:
    """``<case>_original.<ext>`` with ``<case>_adversarial.<ext>`` (PNG or TIFF); a
    ``truth.json`` beside them (``{case: true | false | tumour-cell count}``, a count of at
    least 5 meaning tumour) is attached when present."""
    root = Path(folder)
    if not root.is_dir():
        raise StudyError(root, "is not a folder of image pairs")
    found: dict[str, dict[str, Path]] = {}
    for p in sorted(root.iterdir()):
        if any(ord(ch) < 32 or ord(ch) == 127 for ch in p.name):
            raise StudyError(p, "a file name holding a control character (a newline?) is refused")
        m = PAIR_NAME.fullmatch(p.name)
        if m is None:
            if LOOKS_LIKE_PAIR.fullmatch(p.name):
                raise StudyError(p, "is named as a pair image but is not PNG or TIFF")
            continue
        have = found.setdefault(m["case"], {})
        cond = m["condition"].lower()
        if cond in have:
            raise StudyError(
                root, f"case {m['case']!r} has two {cond} images: {have[cond].name}, {p.name}"
            )
        have[cond] = p
    lonely = sorted(c for c, v in found.items() if len(v) != 2)
    if lonely:
        raise StudyError(root, f"cases without both images: {', '.join(lonely[:5])}")
    if not found:
        raise StudyError(root, "holds no <case>_original / <case>_adversarial pairs")
    truth: dict[str, Any] = {}
    if (root / "truth.json").is_file():
        try:
            truth = json.loads((root / "truth.json").read_text())
        except ValueError as exc:
            raise StudyError(root / "truth.json", f"is not JSON ({exc})") from exc
    return [Pair(c, v["original"], v["adversarial"], truth.get(c)) for c, v in found.items()]


def pairs_from_runs(
    runs: Sequence[str | os.PathLike[str]], *, truth: str | os.PathLike[str] | None = None
) -> list[Pair]:
    """One case per attacked tile of runs (``experiments.runs.RunFolder``: the Attack
    dock's and ``cpadv attack``'s, the same layout): the original tile read from the
    slide, the adversarial one from the run's delta slide.

    Ground truth is the number of tumour nuclei in the tile, from ``truth`` or the slide's
    own ``.truth.json`` beside it (synthetic slides); ``tumour`` is ``count >= 5``. Without
    either, cases carry no truth and the analysis reports rates without sensitivity.
    """
    from napari_cpadv.annotations.dataset import read_nuclei
    from napari_cpadv.experiments.runs import RunFolder
    from napari_cpadv.slide import open_slide
    from napari_cpadv.slide.delta import open_delta

    pairs: list[Pair] = []
    for folder in runs:
        try:
            found_run, report = RunFolder.open(folder)
        except CpadvError as exc:
            raise StudyError(exc.path, exc.reason) from exc
        run = found_run.path
        try:
            level, side = int(report["level"]), int(report["tile"])
            positions = [(int(r), int(c)) for r, c in report["positions"]]
            slide_path = Path(report["slide"])
        except (ValueError, KeyError, TypeError) as exc:
            raise StudyError(found_run.report_path, f"is not a finished run ({exc})") from exc
        slide = open_slide(slide_path)
        adversarial = open_delta(found_run.adversarial)
        found = Path(truth) if truth else slide_path.with_suffix(".truth.json")
        nuclei = read_nuclei(found) if found.is_file() else None
        if truth and nuclei is None:
            raise StudyError(truth, "does not exist")
        ds = float(slide.downsamples[level])
        for r, c in positions:
            case = f"{run.name}-L{level}-r{r}-c{c}"
            value = None
            if nuclei is not None:
                x, y, tumour = nuclei
                x0, y0, x1, y1 = c * ds, r * ds, (c + side) * ds, (r + side) * ds
                cells = int((tumour & (x >= x0) & (x < x1) & (y >= y0) & (y < y1)).sum())
                value = {"tumour": cells >= TUMOUR_CELLS, "tumour_cells": cells}
            where = f"level {level}, row {r}, col {c}, {side} px"
            pairs.append(
                Pair(
                    case,
                    slide.read_region(level, r, c, side, side),
                    adversarial.read_region(level, r, c, side, side),
                    value,
                    dict(report.get("model") or {}),
                    (f"{slide_path} ({where})", f"{found_run.adversarial} ({where})"),
                )
            )
    if not pairs:
        raise StudyError(None, "the runs hold no attacked tiles")
    return pairs


def pairs_from(
    folders: Sequence[str | os.PathLike[str]], *, truth: str | os.PathLike[str] | None = None
) -> list[Pair]:
    """The pairs of one folder of image pairs, or of workbench run folders (those holding a
    ``report.json``); a mix of the two, or several pair folders, is refused."""
    from napari_cpadv.experiments.runs import RunFolder

    runs = [f for f in folders if RunFolder(f).report_path.is_file()]
    if (runs and len(runs) != len(folders)) or (not runs and len(folders) != 1):
        raise StudyError(None, "give either one folder of image pairs or workbench run folders")
    return pairs_from_runs(runs, truth=truth) if runs else pairs_from_folder(folders[0])


def pixels(src: Path | np.ndarray, name: str) -> np.ndarray:
    """A pair member's pixels as ``(rows, cols, 3)`` uint8; ``StudyError`` when it is not
    an RGB image or cannot be read."""
    from PIL import Image

    if isinstance(src, np.ndarray):
        if src.ndim != 3 or src.shape[2] != 3 or src.dtype != np.uint8:
            raise StudyError(name, f"is {src.dtype} {src.shape}, not an RGB uint8 image")
        return src
    try:
        with Image.open(src) as im:
            return np.asarray(im.convert("RGB"), dtype=np.uint8)
    except OSError as exc:
        raise StudyError(src, f"cannot be read as an image ({exc})") from exc


def visible_pairs(
    pairs: Sequence[Pair], threshold_db: float | None = None
) -> list[tuple[str, float]]:
    """``(case, PSNR in dB)`` of each pair whose adversarial image differs from its original
    enough to be seen: a PSNR below ``threshold_db`` (default: the Attack dock's 30 dB,
    ``attacks.budgets.VISIBLE_PSNR_DB``). Such a pair un-blinds itself in a study: a reader
    tells the altered image by its look, not by the detector's question."""
    from skimage.metrics import peak_signal_noise_ratio

    from napari_cpadv.attacks.budgets import VISIBLE_PSNR_DB

    limit = VISIBLE_PSNR_DB if threshold_db is None else threshold_db
    out = []
    for p in pairs:
        a = pixels(p.original, f"{p.case} (original)")
        b = pixels(p.adversarial, f"{p.case} (adversarial)")
        if a.shape != b.shape or np.array_equal(a, b):
            continue  # the build refuses the first; the second is no change at all
        db = float(peak_signal_noise_ratio(a, b, data_range=255))
        if db < limit:
            out.append((p.case, db))
    return out

"""One run folder: the only code that names the files of an attack run.

A run is what ``cpadv attack`` and the Attack dock both write, and what ``cpadv study
create`` and a session file read::

    run.json                  what was asked (written first, before any work)
    adversarial.delta.zarr    the adversarial slide, tile by tile as the attack goes (its
                              tiles.jsonl: the finished chunks, which --resume keeps)
    heatmaps/NAME_before.zarr heatmaps of each scored detector before and after
    heatmaps/NAME_after.zarr
    perturbation.tif          δ over the attacked tiles, in grey levels
    metrics.csv metrics.json  the metrics table
    report.json               the whole report, written last: a run without it is unfinished

``RunFolder.open`` also reads a ``cpadv attack`` output written before runs had one layout
(``SLIDE.delta.zarr`` beside ``report.json``, the report naming it).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

from napari_cpadv.errors import CpadvError

# what a finished run's report must hold for a study to cut its tiles
REPORT_KEYS = ("slide", "level", "tile", "positions")


class RunFolder:
    """The files of one run (see the module docstring)."""

    RUN = "run.json"
    REPORT = "report.json"
    ADVERSARIAL = "adversarial.delta.zarr"
    HEATMAPS = "heatmaps"
    PERTURBATION = "perturbation.tif"
    METRICS_CSV = "metrics.csv"
    METRICS_JSON = "metrics.json"

    def __init__(self, path: str | os.PathLike[str], *, made: bool = False) -> None:
        self.path = Path(path)
        self.made = made  # this run made the folder (so discarding it removes the folder)
        self.legacy_adversarial: Path | None = None  # an older cpadv attack's SLIDE.delta.zarr

    @classmethod
    def create(cls, results: str | os.PathLike[str], label: str) -> RunFolder:
        """A new, empty run folder ``results/YYYYmmdd-HHMMSS-label[-n]`` (the docks')."""
        root = Path(results)
        root.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        for n in range(1000):
            path = root / (f"{stamp}-{label}" + (f"-{n}" if n else ""))
            try:
                path.mkdir()
                return cls(path, made=True)
            except FileExistsError:
                continue
        raise OSError(f"{root}: cannot make a new run folder")

    @classmethod
    def at(cls, path: str | os.PathLike[str], *, resume: bool = False) -> RunFolder:
        """The run folder the user named (``cpadv attack --out``): made when missing; one
        that already holds an adversarial slide is refused, never overwritten. With
        ``resume``, the folder of a stopped run (its adversarial slide, no report)."""
        p = Path(path)
        if p.exists() and not p.is_dir():
            raise CpadvError(p, "--out names a folder to write into, and this is a file")
        run = cls(p, made=not p.exists())
        if resume:
            if run.report_path.exists():
                raise CpadvError(p, f"is a finished run ({cls.REPORT}): nothing to resume")
            if not (p / cls.RUN).is_file() or not run.adversarial.exists():
                raise CpadvError(
                    p, f"holds no stopped run ({cls.RUN} and {cls.ADVERSARIAL}) to resume"
                )
            return run
        if run.adversarial.exists():
            raise CpadvError(p, f"already holds a run ({cls.ADVERSARIAL}); give a new folder")
        p.mkdir(parents=True, exist_ok=True)
        return run

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> tuple[RunFolder, dict[str, Any]]:
        """A finished run and its report; ``CpadvError`` says what is missing."""
        run = cls(path)
        try:
            report = json.loads(run.report_path.read_text())
        except FileNotFoundError:
            raise CpadvError(run.path, f"is not a finished run (no {cls.REPORT})") from None
        except (OSError, ValueError) as exc:
            raise CpadvError(run.report_path, f"cannot be read ({exc})") from exc
        missing = [k for k in REPORT_KEYS if not isinstance(report, dict) or k not in report]
        if missing:
            raise CpadvError(run.report_path, f"is not a run report (no {', '.join(missing)})")
        if not run.adversarial.exists():
            older = run.path / Path(str(report.get("delta", ""))).name
            if not report.get("delta") or not older.exists():
                raise CpadvError(run.path, f"holds no adversarial slide ({cls.ADVERSARIAL})")
            run.legacy_adversarial = older
        return run, report

    @property
    def adversarial(self) -> Path:
        return self.legacy_adversarial or self.path / self.ADVERSARIAL

    @property
    def report_path(self) -> Path:
        return self.path / self.REPORT

    @property
    def perturbation(self) -> Path:
        return self.path / self.PERTURBATION

    def heatmap(self, detector: str, when: str) -> Path:
        """``heatmaps/DETECTOR_WHEN.zarr`` (``when``: ``before`` or ``after``)."""
        return self.path / self.HEATMAPS / f"{detector}_{when}.zarr"

    def write_request(self, value: dict[str, Any]) -> None:
        self._write(self.RUN, value)

    def check_request(self, value: dict[str, Any]) -> None:
        """Refuse to resume this run with a request other than the one it recorded (the
        device aside: a run may resume elsewhere), naming what differs."""
        path = self.path / self.RUN
        try:
            asked = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise CpadvError(path, f"cannot be read ({exc})") from None
        now = json.loads(json.dumps(value, default=str))
        differ = sorted(
            f"{k}: {a!r} then, {b!r} now"
            for part in ("model",)
            for k in set(asked.get(part, {})) | set(now.get(part, {}))
            if k != "device"
            and (a := asked.get(part, {}).get(k)) != (b := now.get(part, {}).get(k))
        )
        differ += [
            f"{k}: {asked.get(k)!r} then, {now.get(k)!r} now"
            for k in ("slide", "box")
            if asked.get(k) != now.get(k)
        ]
        if differ:
            raise CpadvError(
                path, "the stopped run was asked with other settings (" + "; ".join(differ) + ")"
            )

    def write_report(self, report: dict[str, Any]) -> None:
        self._write(self.REPORT, report)

    def write_metrics(self, table: list[dict[str, Any]], csv_text: str) -> None:
        from napari_cpadv.files import write_atomic

        self._write(self.METRICS_JSON, {"metrics": table})
        write_atomic(self.path / self.METRICS_CSV, csv_text.encode())

    def _write(self, name: str, value: Any) -> None:
        from napari_cpadv.files import write_json

        write_json(self.path / name, value, default=str)

    def discard(self) -> None:
        """Undo a run that stopped before its first tile: the folder when this run made
        it, else only the files it wrote (a user's folder keeps what it held)."""
        if self.made:
            shutil.rmtree(self.path, ignore_errors=True)
            return
        for name in (self.RUN, self.METRICS_CSV, self.METRICS_JSON, self.PERTURBATION):
            (self.path / name).unlink(missing_ok=True)
        shutil.rmtree(self.path / self.HEATMAPS, ignore_errors=True)

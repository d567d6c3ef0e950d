"""The session file: which layers a workbench session showed, and where each came from.

A session file (``*.cpadv.json``) records, for every layer it can restore, its kind
(``slide``, ``annotations``, ``heatmap``, ``adversarial``, ``perturbation``), name and
file, with provenance: the slide's path and fingerprint, the detector and its weights'
SHA-256, the attack and its parameters, the seed, and the versions of the software. Opening
it (napari's reader, or ``read_session``) gives the same layers back. A slide whose
fingerprint changed since is reported, not silently used.

The fingerprint of a slide is its size and the SHA-256 of its first and last MiB (hashing
a whole slide of gigabytes would take longer than the session).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from napari_cpadv.errors import FormatError

FORMAT = "napari-cpadv session"
VERSION = 1
SUFFIX = ".cpadv.json"
KINDS = ("slide", "annotations", "heatmap", "adversarial", "perturbation")


@dataclass(frozen=True)
class LayerRecord:
    """One restorable layer: ``kind``, ``name``, ``path`` (relative to the session file
    when it lies beneath it) and ``provenance``."""

    kind: str
    name: str
    path: str
    provenance: dict[str, Any] = field(default_factory=dict)


def fingerprint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Size and SHA-256 of the first and last MiB of a file (or of a folder's zarr.json)."""
    p = Path(path)
    if p.is_dir():
        p = p / "zarr.json"
    size = p.stat().st_size
    h = hashlib.sha256()
    with p.open("rb") as f:
        h.update(f.read(2**20))
        if size > 2**20:
            f.seek(max(size - 2**20, 2**20))
            h.update(f.read())
    return {"size": size, "quick_sha256": h.hexdigest()}


def write_session(
    path: str | os.PathLike[str], slide: str | os.PathLike[str], layers: list[LayerRecord]
) -> Path:
    """Write the session file atomically; paths under its folder are stored relative."""
    from napari_cpadv.files import versions, write_json

    out = Path(path)
    if not out.name.endswith(SUFFIX):
        raise ValueError(f"{out}: a session file's name ends in {SUFFIX}")
    for rec in layers:
        if rec.kind not in KINDS:
            raise ValueError(f"unknown layer kind {rec.kind!r}; choose one of {', '.join(KINDS)}")
    base = out.parent.resolve()

    def rel(p: str) -> str:
        q = Path(p).resolve()
        return str(q.relative_to(base)) if q.is_relative_to(base) else str(q)

    body = {
        "format": FORMAT,
        "version": VERSION,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "versions": versions(),
        "slide": {"path": rel(str(slide)), **fingerprint(slide)},
        "layers": [{**asdict(rec), "path": rel(rec.path)} for rec in layers],
    }
    return write_json(out, body, default=str)


@dataclass(frozen=True)
class Session:
    path: Path
    slide: Path
    layers: list[LayerRecord]
    warnings: list[str]
    body: dict[str, Any]


def read_session(path: str | os.PathLike[str]) -> Session:
    """Read and check a session file; paths come back absolute."""
    p = Path(path)
    try:
        body = json.loads(p.read_text())
    except OSError as exc:
        raise FormatError(p, f"cannot be read ({exc.strerror})") from exc
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FormatError(p, f"is not JSON ({exc})") from exc
    if not isinstance(body, dict) or body.get("format") != FORMAT:
        raise FormatError(p, "is not a napari-cpadv session file")
    if body.get("version") != VERSION:
        raise FormatError(p, f"session version {body.get('version')!r}; this reads {VERSION}")
    base = p.parent

    def absolute(q: str) -> Path:
        return Path(q) if Path(q).is_absolute() else base / q

    try:
        slide = absolute(body["slide"]["path"])
        layers = [
            LayerRecord(r["kind"], r["name"], str(absolute(r["path"])), r.get("provenance", {}))
            for r in body["layers"]
        ]
    except (KeyError, TypeError) as exc:
        raise FormatError(p, f"lacks {exc} in its slide or layers") from exc
    warnings = []
    if not slide.exists():
        raise FormatError(p, f"its slide {slide} is missing")
    now = fingerprint(slide)
    if now["quick_sha256"] != body["slide"].get("quick_sha256") or now["size"] != body["slide"].get(
        "size"
    ):
        warnings.append(f"{slide} changed since the session was saved")
    for rec in layers:
        if rec.kind not in KINDS:
            raise FormatError(p, f"unknown layer kind {rec.kind!r}")
        if not Path(rec.path).exists():
            warnings.append(f"{rec.name}: {rec.path} is missing")
    return Session(p, slide, layers, warnings, body)

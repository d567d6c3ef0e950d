"""Build a blinded study from original/adversarial pairs (seed 001 §2.3).

Each image of each pair is presented ``replicates`` times, in an order shuffled with a
recorded seed under two constraints: two presentations of the same image are at least
``min_gap`` positions apart, and the two members of a pair are never adjacent. Each
presentation gets an opaque random token and is written as ``images/<token>.tif`` in one
container for both conditions: 8-bit RGB, uncompressed (a perturbed image must not give
itself away by compressing worse), no metadata beyond the pixels' own tags.

``manifest.json`` (written once, never rewritten) holds the study id, creation time,
versions, seed, constraints, questions, the enrolled readers (a verifier of each reader's
secret code, not the code), the presentation order as tokens, each token's image SHA-256
salted with the token (so the manifest does not tell which tokens show the same image),
and the SHA-256 of the key, which carries 256 random bits of salt. The key (the owner's,
written outside the study folder: ``OUT.key.json`` unless ``--key`` names a place) holds
the readers' codes and maps each token to its case, condition, replicate, source file,
ground truth and attack parameters.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import shutil
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from napari_cpadv.errors import CpadvError
from napari_cpadv.files import fsync_dir, replacing, versions, write_new
from napari_cpadv.progress import Progress, Work

CONDITIONS = ("original", "adversarial")
PAIR_NAME = re.compile(r"(?P<case>.+)_(?P<condition>original|adversarial)\.(png|tif|tiff)", re.I)
LOOKS_LIKE_PAIR = re.compile(r".+_(original|adversarial)\.[A-Za-z0-9]+", re.I)

# seed 001's design: tumour present by the rule of at least 5 tumour cells, each image twice
QUESTIONS: dict[str, dict[str, Any]] = {
    "tumour": {
        "kind": "choice",
        "text": "Is tumour present (at least 5 tumour cells)?",
        "options": ["no", "yes"],
        "keys": ["n", "y"],
    },
    "confidence": {"kind": "scale", "text": "Confidence", "min": 1, "max": 5},
    "count": {"kind": "count", "text": "How many tumour cells?"},
    "altered": {
        "kind": "choice",
        "text": "Was this image altered?",
        "options": ["no", "yes"],
        "keys": ["u", "a"],  # unaltered, altered
    },
}
PRESETS: dict[str, dict[str, Any]] = {
    "seed001": {"questions": ["tumour"], "replicates": 2, "min_gap": 2}
}


class StudyError(CpadvError):
    """A study that cannot be built or read as asked."""


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


TUMOUR_CELLS = 5
"""Seed 001's rule: an image shows tumour when it holds at least 5 tumour cells."""


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


def constrained_order(
    n_cases: int, replicates: int, min_gap: int, seed: int, *, tries: int = 2000
) -> list[tuple[int, str, int]]:
    """(case, condition, replicate) presentations shuffled under the constraints.

    A seeded randomised greedy: place one presentation at a time, choosing at random among
    those that keep the constraints; start again (same generator) on a dead end.
    """
    rng = np.random.default_rng(seed)
    items = [(c, cond, r) for c in range(n_cases) for cond in CONDITIONS for r in range(replicates)]
    for _ in range(tries):
        left = list(items)
        order: list[tuple[int, str, int]] = []
        while left:
            ok = [k for k, it in enumerate(left) if _fits(order, it, min_gap)]
            if not ok:
                break
            order.append(left.pop(ok[int(rng.integers(len(ok)))]))
        if not left:
            return order
    raise StudyError(
        None,
        f"no order of {len(items)} presentations keeps the same image {min_gap} apart and pair "
        "members apart: use more cases, fewer replicates or a smaller gap",
    )


def _fits(order: list[tuple[int, str, int]], item: tuple[int, str, int], min_gap: int) -> bool:
    case, cond, _ = item
    if order and order[-1][0] == case and order[-1][1] != cond:
        return False  # the two members of a pair never adjacent
    for back, (c, d, _) in enumerate(reversed(order[-max(min_gap - 1, 0) :]), start=1):
        if c == case and d == cond and back < min_gap:
            return False
    return True


def _present(
    src: Path | np.ndarray, dst: Path, shape: tuple[int, ...] | None, name: str
) -> tuple[bytes, tuple[int, ...]]:
    """Write ``src`` as the study's container; returns the file's bytes and the shape."""
    import tifffile
    from PIL import Image

    if isinstance(src, np.ndarray):
        if src.ndim != 3 or src.shape[2] != 3 or src.dtype != np.uint8:
            raise StudyError(name, f"is {src.dtype} {src.shape}, not an RGB uint8 image")
        pixels = src
    else:
        try:
            with Image.open(src) as im:
                pixels = np.asarray(im.convert("RGB"), dtype=np.uint8)
        except OSError as exc:
            raise StudyError(src, f"cannot be read as an image ({exc})") from exc
    if shape is not None and pixels.shape != shape:
        raise StudyError(name, f"is {pixels.shape[1]}x{pixels.shape[0]}, its pair member is "
                         f"{shape[1]}x{shape[0]}: both must be the same size")  # fmt: skip
    with replacing(dst) as tmp:
        tifffile.imwrite(
            tmp, pixels, photometric="rgb", compression=None, metadata=None, software=None
        )
    return dst.read_bytes(), pixels.shape


def build_study(pairs: list[Pair], out: str | os.PathLike[str], **options: Any) -> Path:
    """Write the study folder (see ``study_work``); returns ``manifest.json``'s path."""
    from napari_cpadv.progress import drive

    return drive(study_work(pairs, out, **options))


READER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
"""A reader id: also a file name (``logs/<id>.jsonl``), so letters, digits, ``. _ -``."""
MAX_PRESENTATIONS = 5000
"""A bound on one study (the order is placed one presentation at a time, quadratic in it)."""


def check_reader_id(reader: str) -> str:
    """``reader`` if it is a valid id (the whole text: a trailing newline is refused)."""
    if not isinstance(reader, str) or not READER_ID.fullmatch(reader):
        raise StudyError(
            None,
            f"reader id {reader!r}: use letters, digits, '.', '_' or '-' (up to 64), "
            "starting with a letter or digit",
        )
    return reader


def default_key_path(root: Path) -> Path:
    """Where a study's key goes unless told: beside the study folder, never inside it."""
    return root.parent / f"{root.name}.key.json"


def study_work(
    pairs: list[Pair],
    out: str | os.PathLike[str],
    *,
    readers: Sequence[str] | None = None,
    key: str | os.PathLike[str] | None = None,
    replicates: int = 2,
    seed: int = 0,
    min_gap: int = 2,
    questions: list[str] | None = None,
    allow_corrections: bool = False,
    view_tracking: float = 0.0,
) -> Work[Path]:
    """Write the study folder, one presented image a step; returns ``manifest.json``'s path.

    ``readers`` are enrolled, each with a code of its own (in the key, see
    :func:`reader_codes`; hand each reader theirs). The key goes to ``key`` or beside the
    study folder (``<out>.key.json``), never into it by default. A build that fails or is
    cancelled removes what it wrote (nothing half-built is left to be mistaken for a
    study).

    ``allow_corrections`` lets a reader go back to an answered case (a correction is a new
    ``answer_revised`` event); ``view_tracking`` (seconds, 0 = off) samples the camera's
    centre and zoom while a case is shown.
    """
    questions = questions or ["tumour"]
    unknown = [q for q in questions if q not in QUESTIONS]
    if unknown:
        raise StudyError(None, f"unknown questions {unknown}; choose from {', '.join(QUESTIONS)}")
    if replicates < 1 or min_gap < 1:
        raise StudyError(None, f"replicates {replicates} and min gap {min_gap} must be >= 1")
    if not readers:
        raise StudyError(None, "enrol at least one reader (--readers): each gets a code")
    enrolled = [check_reader_id(r) for r in readers]
    if len(set(enrolled)) != len(enrolled):
        raise StudyError(None, "a reader is enrolled twice")
    if not pairs:
        raise StudyError(None, "a study needs at least one original/adversarial pair")
    if len({p.case for p in pairs}) != len(pairs):
        raise StudyError(None, "two pairs share a case name")
    if len(pairs) * 2 * replicates > MAX_PRESENTATIONS:
        raise StudyError(
            None, f"{len(pairs) * 2 * replicates} presentations: at most {MAX_PRESENTATIONS}"
        )
    if not 0 <= view_tracking <= 60:
        raise StudyError(None, f"view tracking every {view_tracking} s: give 0 (off) to 60 s")
    root = Path(out)
    key_path = Path(key) if key is not None else default_key_path(root)
    if (root / "manifest.json").exists():
        raise StudyError(root, "already holds a study (manifest.json is written once)")
    if (root / "images").exists() or (root / "key.json").exists():
        raise StudyError(root, "holds images or a key but no manifest: choose a new folder")
    if key_path.exists():
        raise StudyError(key_path, "exists already: a study's key is written once")
    order = constrained_order(len(pairs), replicates, min_gap, seed)
    created = not root.exists()
    images = root / "images"
    images.mkdir(parents=True)
    try:
        path = yield from _write_study(
            pairs, root, key_path, enrolled, order, questions,
            {"seed": seed, "replicates": replicates, "min_gap": min_gap,
             "allow_corrections": bool(allow_corrections),
             "view_tracking_s": float(view_tracking)},
        )  # fmt: skip
    except BaseException:
        shutil.rmtree(images, ignore_errors=True)
        key_path.unlink(missing_ok=True)
        if created:
            shutil.rmtree(root, ignore_errors=True)
        raise
    return path


def reader_codes(key: str | os.PathLike[str]) -> dict[str, str]:
    """Each enrolled reader's code, from the study's key (the owner's only)."""
    try:
        codes = json.loads(Path(key).read_text())["readers"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise StudyError(key, f"is not a study key with reader codes ({exc})") from exc
    return {str(k): str(v) for k, v in codes.items()}


def token_digest(token: str, data: bytes) -> str:
    """SHA-256 of a presented file, salted with its token: two presentations of the same
    image have the same bytes but unrelated digests, so the manifest does not say which
    tokens show the same image."""
    return hashlib.sha256(token.encode() + b"\0" + data).hexdigest()


def _write_study(
    pairs: list[Pair],
    root: Path,
    key_path: Path,
    readers: list[str],
    order: list[tuple[int, str, int]],
    questions: list[str],
    design: dict[str, Any],
) -> Work[Path]:
    from napari_cpadv.study.codes import new_code, secret_of, verifier

    images = root / "images"
    tokens: list[dict[str, str]] = []
    key: dict[str, dict[str, Any]] = {}
    shapes: dict[int, tuple[int, ...]] = {}
    digests: dict[tuple[int, str], str] = {}
    for step, (case_i, cond, rep) in enumerate(order, start=1):
        pair = pairs[case_i]
        token = secrets.token_hex(8)
        src = pair.image(cond)
        data, shape = _present(src, images / f"{token}.tif", shapes.get(case_i), pair.source(cond))
        digest = hashlib.sha256(data).hexdigest()
        shapes[case_i] = shape
        digests[case_i, cond] = digest
        other = digests.get((case_i, "adversarial" if cond == "original" else "original"))
        if other == digest:  # the same container: the same pixels
            raise StudyError(
                pair.source("adversarial"),
                f"case {pair.case!r}: the adversarial image is identical to the original "
                "(an attack that changed nothing, or an empty or damaged adversarial slide)",
            )
        tokens.append({"token": token, "file": f"images/{token}.tif",
                       "sha256": token_digest(token, data)})  # fmt: skip
        key[token] = {
            "case": pair.case,
            "condition": cond,
            "replicate": rep + 1,
            "source": pair.source(cond),
            "truth": pair.truth,
            "attack": pair.attack,
        }
        yield Progress(step, len(order))
    fsync_dir(images)  # every presented image's entry is durable before the manifest
    study_id = str(uuid.uuid4())
    codes = {r: new_code() for r in readers}
    key_doc = {
        "study_id": study_id,
        # 256 random bits: the key cannot be guessed and confirmed against its hash
        "salt": secrets.token_hex(32),
        "readers": codes,
        "tokens": key,
    }
    key_bytes = (json.dumps(key_doc, indent=2, default=str) + "\n").encode()
    write_new(key_path, key_bytes)
    manifest = {
        "format": "napari-cpadv study",
        "version": 2,
        "study_id": study_id,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "versions": versions(),
        **{k: design[k] for k in ("seed", "replicates", "min_gap")},
        "questions": {q: QUESTIONS[q] for q in questions},
        **{k: design[k] for k in ("allow_corrections", "view_tracking_s")},
        "readers": {r: verifier(study_id, r, secret_of(c)) for r, c in codes.items()},
        "order": [t["token"] for t in tokens],
        "tokens": tokens,
        "key_sha256": hashlib.sha256(key_bytes).hexdigest(),
    }
    path = root / "manifest.json"
    write_new(path, (json.dumps(manifest, indent=2) + "\n").encode())
    return path


def manifest_hash(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a manifest file: where every reader's log chains from."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()

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
import secrets
import shutil
import time
import uuid
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from napari_cpadv.files import fsync_dir, replacing, versions, write_new
from napari_cpadv.progress import Progress, Work
from napari_cpadv.study.model import (
    CONDITIONS,
    MAX_PRESENTATIONS,
    QUESTIONS,
    StudyError,
    check_reader_id,
    default_key_path,
    token_digest,
)
from napari_cpadv.study.pairs import Pair, visible_pairs


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

    from napari_cpadv.study.pairs import pixels as read_pixels

    pixels = read_pixels(src, name)
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
    strict: bool = False,
) -> Work[Path]:
    """Write the study folder, one presented image a step; returns ``manifest.json``'s path.

    ``readers`` are enrolled, each with a code of its own (in the key, see
    :func:`reader_codes`; hand each reader theirs). The key goes to ``key`` or beside the
    study folder (``<out>.key.json``), never into it by default. A build that fails or is
    cancelled removes what it wrote (nothing half-built is left to be mistaken for a
    study).

    ``allow_corrections`` lets a reader go back to an answered case (a correction is a new
    ``answer_revised`` event); ``view_tracking`` (seconds, 0 = off) samples the camera's
    centre and zoom while a case is shown. A pair whose perturbation a reader would see
    (PSNR below 30 dB, ``pairs.visible_pairs``) un-blinds its case: a warning names each,
    and ``strict`` refuses the build.
    """
    questions = questions or ["tumour"]
    enrolled = _check_design(pairs, readers, questions, replicates, min_gap, view_tracking)
    seen = _visible(pairs, strict)
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
             "view_tracking_s": float(view_tracking), "visible_pairs": seen},
        )  # fmt: skip
    except BaseException:
        shutil.rmtree(images, ignore_errors=True)
        key_path.unlink(missing_ok=True)
        if created:
            shutil.rmtree(root, ignore_errors=True)
        raise
    return path


def _check_design(
    pairs: list[Pair],
    readers: Sequence[str] | None,
    questions: list[str],
    replicates: int,
    min_gap: int,
    view_tracking: float,
) -> list[str]:
    """The enrolled reader ids, once the design is one a study can have (``StudyError``
    says what is not)."""
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
    return enrolled


def _visible(pairs: list[Pair], strict: bool) -> list[tuple[str, float]]:
    """The pairs a reader would see differ (``pairs.visible_pairs``): a warning naming
    them, or with ``strict`` a refusal."""
    seen = visible_pairs(pairs)
    if seen:
        from napari_cpadv.attacks.budgets import VISIBLE_PSNR_DB

        what = ", ".join(f"{case} ({db:.1f} dB)" for case, db in seen[:5])
        more = f" and {len(seen) - 5} more" if len(seen) > 5 else ""
        text = (f"{len(seen)} of {len(pairs)} pairs differ visibly (PSNR below "
                f"{VISIBLE_PSNR_DB:.0f} dB), which un-blinds them: {what}{more}")  # fmt: skip
        if strict:
            raise StudyError(None, f"{text}; refused (--strict)")
        warnings.warn(text, UserWarning, stacklevel=3)
    return seen


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

    tokens, key = yield from _presentations(pairs, root / "images", order)
    study_id = str(uuid.uuid4())
    codes = {r: new_code() for r in readers}
    key_doc = {
        "study_id": study_id,
        # 256 random bits: the key cannot be guessed and confirmed against its hash
        "salt": secrets.token_hex(32),
        "readers": codes,
        "tokens": key,
        # the experimenter's record of the pairs a reader could tell apart by their look
        "visible_pairs": [
            {"case": c, "psnr_db": round(db, 2)} for c, db in design["visible_pairs"]
        ],
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


def _presentations(
    pairs: list[Pair], images: Path, order: list[tuple[int, str, int]]
) -> Work[tuple[list[dict[str, str]], dict[str, dict[str, Any]]]]:
    """Every presentation written as ``images/<token>.tif``, its entry fsynced before the
    manifest is; returns the manifest's token list and the key's token map. An adversarial
    image with the same pixels as its original is refused."""
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
    return tokens, key

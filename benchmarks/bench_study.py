"""A large reader study analyses in seconds (issue 14, item 11): 5 readers x 2,000 answers.

1,000 cases of 8 x 8 images, one replicate, so 2,000 presentations; each of 5 enrolled
readers answers all of them through ``ReaderSession`` (each answer fsynced, as in a real
session); then ``analyze`` runs (verification of every HMAC chain, all statistics,
exports). Reference: the time to read the five logs' bytes and parse their JSON, the
floor of any analysis, measured in the same run.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from napari_cpadv.study.analyze import analyze
from napari_cpadv.study.build import build_study
from napari_cpadv.study.model import default_key_path, reader_codes
from napari_cpadv.study.pairs import pairs_from_folder
from napari_cpadv.study.read import ReaderSession

CASES, READERS = 1000, 5


def main() -> None:
    root = Path(tempfile.mkdtemp(prefix="cpadv-study-bench-"))
    pairs = root / "pairs"
    pairs.mkdir()
    rng = np.random.default_rng(0)
    for k in range(CASES):
        a = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
        Image.fromarray(a).save(pairs / f"c{k}_original.png")
        Image.fromarray(a ^ 1).save(pairs / f"c{k}_adversarial.png")
    (pairs / "truth.json").write_text(json.dumps({f"c{k}": k % 2 == 0 for k in range(CASES)}))
    readers = [f"reader{k}" for k in range(READERS)]
    t = time.perf_counter()
    build_study(pairs_from_folder(pairs), root / "study", readers=readers, replicates=1,
                min_gap=1, questions=["tumour", "altered"])  # fmt: skip
    build_s = time.perf_counter() - t
    codes = reader_codes(default_key_path(root / "study"))
    t = time.perf_counter()
    for r in readers:
        with ReaderSession(root / "study", r, codes[r]) as s:
            while not s.done:
                s.show()
                s.answer(tumour="yes" if rng.random() < 0.5 else "no", altered="no")
    read_s = time.perf_counter() - t
    t = time.perf_counter()
    summary = analyze(root / "study", default_key_path(root / "study"), root / "out")
    analyse_s = time.perf_counter() - t
    t = time.perf_counter()
    for r in readers:
        [json.loads(x) for x in (root / "study" / "logs" / f"{r}.jsonl").read_bytes().splitlines()]
    floor_s = time.perf_counter() - t
    print(json.dumps({
        "answers": READERS * 2 * CASES,
        "build_s": round(build_s, 1),
        "reading_s": round(read_s, 1),
        "analyse_s": round(analyse_s, 2),
        "parse_logs_s": round(floor_s, 2),
        "ratio": round(analyse_s / floor_s, 1),
        "altered_p": summary["readers"]["all readers"]["altered"]["binomial_p_vs_chance"],
    }, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()

"""The tables of BENCHMARKS.md: what regenerates each and what each measures (issue 32).

Every table has a stamp on the line after its heading in BENCHMARKS.md,

    <!-- stamp: commit 8073d97, 2026-12-01, scale: the paper's tiles -->

naming the commit it was measured at. ``check_bench.py`` (``make check-bench``) lists each
table whose stamp is missing or older than the last change to what it measures
(``depends``: modules, weights, its own script); ``run_all.py`` (``make bench``) reruns the
stale ones' commands and keeps their output under ``benchmarks/results/tables/``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Table:
    id: str
    heading: str  # the start of its heading in BENCHMARKS.md, after the hashes
    command: tuple[str, ...] | None  # from the repository root; None: no script (said why)
    depends: tuple[str, ...]  # paths whose change makes its numbers old
    minutes: float  # how long its command took on the 2-core machine (make bench BENCH=--all,
    # 2026-12-07, the machine otherwise quiet; streaming: with the Camelyon16-sized fixture's
    # first writing)
    needs: str = ""  # what beside the CPU it needs: a display, a GPU, other data


PY = ".venv/bin/python"
WEIGHTS = "sample_data/weights"
# The painted-slide weights the tables measure, file by file (weights added beside them,
# such as the real-tissue ones, leave these tables current).
# The experiments' modules less the real-field cross-validation (``spatial.py``: only the
# real-tissue table measures it); an exclude pathspec, which git log and diff-tree read.
EXPERIMENTS = ("napari_cpadv/experiments", ":(exclude)napari_cpadv/experiments/spatial.py")
SHIPPED = tuple(
    f"{WEIGHTS}/{n}.{x}" for n in ("dae", "sparse", "resnet18") for x in ("json", "safetensors")
)
# The reading tables time reading slides, not painting them: the painter (``synthetic.py``)
# writes their fixtures, the same bytes whatever its pool (tests/slide/test_synthetic.py).
READING = ("napari_cpadv/slide", ":(exclude)napari_cpadv/slide/synthetic.py")
TABLES = (
    Table(
        "streaming",
        "Streaming slides (issue 2)",
        ("xvfb-run", "-a", PY, "benchmarks/bench_streaming.py", "--parts", "a", "b", "c", "d"),
        (*READING, "benchmarks/bench_streaming.py", "benchmarks/_camelyon.py"),
        2.4,
        "a display for row (c) (xvfb-run)",
    ),
    Table(
        "decoding",
        "(e) Decoding against its limit",
        (PY, "benchmarks/bench_streaming.py", "--parts", "e"),
        (*READING, "benchmarks/bench_streaming.py"),
        0.1,
    ),
    Table(
        "viewer",
        "(f) Panning in a real viewer beside napari-wsi",
        ("xvfb-run", "-a", PY, "benchmarks/bench_viewer.py"),
        (*READING, "napari_cpadv/_reader.py", "benchmarks/bench_viewer.py"),
        2.7,
        "a display and napari-wsi beside the project (make bench installs it)",
    ),
    Table(
        "viewer_camelyon",
        "(f') The same on a Camelyon16-sized slide",
        ("xvfb-run", "-a", PY, "benchmarks/bench_viewer.py", "benchmarks/_work/camelyon.tif"),
        (
            *READING,
            "napari_cpadv/_reader.py",
            "benchmarks/bench_viewer.py",
            "benchmarks/_camelyon.py",
        ),
        3.1,
        "a display, napari-wsi and the Camelyon16-sized slide bench_streaming.py writes",
    ),
    Table(
        "gui_stalls",
        "(g) The GUI thread during the Attack dock's long actions",
        ("xvfb-run", "-a", PY, "benchmarks/bench_gui_stalls.py"),
        (
            "napari_cpadv/widgets",
            ":(exclude)napari_cpadv/widgets/demo.py",  # the demo is not what it measures
            "napari_cpadv/workbench",
            "benchmarks/bench_gui_stalls.py",
        ),
        1.6,
        "a display",
    ),
    Table(
        "raster",
        "Rasterising annotations (issue 3)",
        (PY, "benchmarks/bench_raster.py"),
        ("napari_cpadv/annotations", "benchmarks/bench_raster.py"),
        0.4,
    ),
    Table(
        "mask_memory",
        "Rasterising a Camelyon16-sized annotation",
        (PY, "benchmarks/bench_mask_memory.py", "--old", "b62739f"),
        ("napari_cpadv/annotations", "napari_cpadv/slide", "benchmarks/bench_mask_memory.py"),
        4.6,
    ),
    Table(
        "study",
        "A large reader study (issue 14)",
        (PY, "benchmarks/bench_study.py"),
        ("napari_cpadv/study", "benchmarks/bench_study.py"),
        1,
    ),
    Table(
        "detectors",
        "Detectors over slides (issue 4)",
        (PY, "benchmarks/bench_detectors.py"),
        (
            "napari_cpadv/inference",
            "napari_cpadv/models",
            *SHIPPED,
            "benchmarks/bench_detectors.py",
        ),
        4.1,
        "make weights' held-out slide (build/weights-data/slide21.tif)",
    ),
    Table(
        "lca",
        "The LCA at stride 2, run to convergence (issue 14)",
        (PY, "benchmarks/bench_lca.py"),
        ("napari_cpadv/models", "napari_cpadv/inference", *SHIPPED, "benchmarks/bench_lca.py"),
        3.8,
        "make weights' held-out slide",
    ),
    Table(
        "stream_training",
        "Training streamed from slides (issue 18, item 4)",
        (PY, "benchmarks/bench_stream.py"),
        ("napari_cpadv/annotations/stream.py", "napari_cpadv/models", "benchmarks/bench_stream.py"),
        0.2,
        "make weights' training slides",
    ),
    Table(
        "cluster_attacks",
        "Attacks on dask.distributed (issue 18, item 3)",
        (PY, "benchmarks/bench_cluster.py"),
        (
            *EXPERIMENTS,
            "napari_cpadv/inference/cluster.py",
            "napari_cpadv/attacks",
            "napari_cpadv/slide/perturb.py",
            *SHIPPED,
            "benchmarks/bench_cluster.py",
        ),
        0.9,
        "make weights' held-out slide",
    ),
    Table(
        "cluster_table1a",
        "Table 1a's folds on dask.distributed",
        (PY, "benchmarks/bench_cluster.py", "--table1a"),
        (
            "napari_cpadv/experiments/crossval.py",
            "napari_cpadv/models/train.py",
            "napari_cpadv/models/resnet.py",
            "napari_cpadv/inference/cluster.py",
            "benchmarks/bench_cluster.py",
        ),
        8.9,
        "make weights' patches",
    ),
    Table(
        "reproduce_quick",
        "Reproducing the papers (issue 17)",
        (  # from an empty folder: a resumed run would keep steps the old code computed
            "bash",
            "-c",
            "rm -rf benchmarks/_work/repro-quick && .venv/bin/cpadv reproduce all --quick"
            " --out benchmarks/_work/repro-quick",
        ),
        ("napari_cpadv/reproduce", *EXPERIMENTS, "napari_cpadv/attacks", "napari_cpadv/inference"),
        1.9,
    ),
    Table(
        "real_folds",
        "Real tissue: the DAE trained on real H&E",
        (PY, "benchmarks/bench_real_folds.py"),
        (
            "napari_cpadv/experiments/spatial.py",
            "napari_cpadv/models",
            "napari_cpadv/inference",  # the stripes' heatmaps
            "sample_data/hgsc_nest.tif",
            "sample_data/cmu_small_region.svs",  # unlabelled tiles of each fold's autoencoder
            *SHIPPED,
            "benchmarks/bench_real_folds.py",
        ),
        2.8,
    ),
    Table(
        "adaptive",
        "Is the sparse detector robust? Adaptive attacks",
        (PY, "benchmarks/bench_adaptive.py"),
        (
            "napari_cpadv/attacks",
            "napari_cpadv/models/lca.py",
            "napari_cpadv/models/lca_grad.py",
            "napari_cpadv/models/sparse.py",
            *SHIPPED,
            "benchmarks/bench_adaptive.py",
        ),
        7.0,
        "the held-out painted slide make weights-data writes",
    ),
    Table(
        "gpu",
        "On a GPU (issue 32, item 3)",
        ("benchmarks/gpu.sh",),
        ("benchmarks/gpu.py",),
        9,
        "a GPU (the device tool); not run by make bench",
    ),
    Table(
        "attack_tables",
        "Attacks on today's weights (issue 14)",
        ("benchmarks/attack_tables.sh",),
        (
            "napari_cpadv/attacks",
            *EXPERIMENTS,
            "napari_cpadv/inference",
            *SHIPPED,
            "benchmarks/attack_tables.sh",
        ),
        11.2,
        "make weights' held-out slide (SCALE=paper: the paper's tiles, about four hours)",
    ),
    Table(
        "attack_overhead",
        "Attack loop overhead",
        (PY, "benchmarks/bench_attacks.py"),
        (
            "napari_cpadv/attacks/engine.py",
            "napari_cpadv/attacks/projections.py",
            "benchmarks/bench_attacks.py",
        ),
        0.9,
    ),
    Table(
        "torchattacks",
        "PGD-L∞ against torchattacks",
        ("make", "bench-torchattacks"),
        (
            "napari_cpadv/attacks/engine.py",
            "napari_cpadv/attacks/projections.py",
            "benchmarks/bench_torchattacks.py",
        ),
        1.1,
        "torchattacks in its own environment (the make target makes it)",
    ),
)

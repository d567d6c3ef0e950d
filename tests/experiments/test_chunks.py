"""Region attacks on dask.distributed and resumed after a stop: the same adversarial slide as
one uninterrupted run in one process, whatever stops, whichever worker is lost."""

from __future__ import annotations

import json
import os
import signal

import numpy as np
import pytest
import torch

from napari_cpadv.attacks.base import AttackSpec
from napari_cpadv.attacks.projections import Budget
from napari_cpadv.errors import CpadvError
from napari_cpadv.experiments import regions
from napari_cpadv.experiments.chunks import JOURNAL
from napari_cpadv.inference.cluster import Cluster
from napari_cpadv.models.detector import make
from napari_cpadv.progress import Progress, drive
from napari_cpadv.slide.delta import open_delta

# level 1, 64-pixel tiles: 8 tiles (4 x 2) in chunks of 2, PGD with a seeded random start
REGION = (0, 0, 512, 256)
SPEC = AttackSpec("pgd", Budget("linf", 4.0, "per_pixel"), 1, steps=3, tile=64, seed=7)


@pytest.fixture(scope="module")
def detector():
    torch.manual_seed(0)
    return make("dae")


def run(slide, detector, out, **kwargs):
    kwargs.setdefault("batch", 2)
    return regions.attack_region(slide.path, detector, SPEC, region=REGION, out=out, **kwargs)


def pyramid(path):
    delta = open_delta(path)
    return [delta.read_region(k, 0, 0, g.rows, g.cols) for k, g in enumerate(delta.geometry)]


@pytest.fixture(scope="module")
def reference(small_slide, detector, tmp_path_factory):
    """One uninterrupted run in this process."""
    out = tmp_path_factory.mktemp("ref") / "adv.delta.zarr"
    report = drive(run(small_slide, detector, out))
    return report, pyramid(out)


def assert_same_run(report, path, reference):
    want_report, want = reference
    for a, b in zip(pyramid(path), want, strict=True):
        np.testing.assert_array_equal(a, b)
    assert report["success"] == want_report["success"]
    assert report["norms"].keys() == want_report["norms"].keys()
    for key, values in report["norms"].items():
        assert values == pytest.approx(want_report["norms"][key]), key
    assert report["tiles"] == 8 and len(report["success"]) == 8


def test_the_reference_run_changed_the_slide_and_journalled_every_chunk(reference, small_slide):
    report, levels = reference
    journal = open_delta(report["delta"]).path / JOURNAL
    entries = [json.loads(x) for x in journal.read_text().splitlines()]
    assert "header" in entries[0] and sorted(e["chunk"] for e in entries[1:]) == [0, 1, 2, 3]
    from napari_cpadv.slide import open_slide

    original = open_slide(small_slide.path).read_region(1, 0, 0, 128, 256)
    assert (levels[1][:128, :256] != original).any()


@pytest.mark.slow
def test_a_cluster_of_two_workers_writes_the_same_slide_as_one_process(
    small_slide, detector, reference, tmp_path, two_workers
):
    out = tmp_path / "adv.delta.zarr"
    report = drive(run(small_slide, detector, out, cluster=two_workers))
    assert report["workers"] == two_workers.scheduler and report["device"] == "cpu"
    assert_same_run(report, out, reference)


@pytest.mark.slow
def test_a_worker_killed_mid_run_loses_only_its_tiles_in_progress(
    small_slide, detector, reference, tmp_path
):
    from napari_cpadv.inference.cluster import client

    out = tmp_path / "adv.delta.zarr"
    with client(Cluster(workers=2)) as dask_client:  # its own: one of its workers dies
        pids = list(dask_client.run(os.getpid).values())
        where = Cluster(dask_client.scheduler.address, device="cpu")
        work = run(small_slide, detector, out, batch=1, cluster=where)
        killed = None
        try:
            while True:
                item = next(work)
                if killed is None and isinstance(item, Progress) and item.step > 0:
                    os.kill(pids[0], signal.SIGKILL)  # one worker dies with tiles to do
                    killed = pids[0]
                    assert item.step < item.total
        except StopIteration as stop:
            report = stop.value
    assert killed is not None
    with pytest.raises(ProcessLookupError):
        os.kill(killed, 0)
    # one tile a chunk (so that tiles remain when the worker dies): the random start
    # depends on the chunking, so the reference is a one-process run of the same chunks
    alone = tmp_path / "alone.delta.zarr"
    want = drive(run(small_slide, detector, alone, batch=1))
    assert_same_run(report, out, (want, pyramid(alone)))


def stop_after(work, chunks):
    """Drive ``work`` until ``chunks`` chunks are written, then stop it (Cancel, Ctrl-C)."""
    for item in work:
        if isinstance(item, Progress) and item.payload.get("tiles", 0) >= 2 * chunks:
            work.close()
            return
    raise AssertionError("the run finished before it was stopped")


def test_a_stopped_run_resumes_where_it_stopped(
    small_slide, detector, reference, tmp_path, monkeypatch
):
    out = tmp_path / "adv.delta.zarr"
    stop_after(run(small_slide, detector, out), chunks=2)
    assert out.exists()
    attacked = []
    real = regions.attack_chunk

    def counting(job, chunk, *args):
        attacked.append(chunk.index)
        return real(job, chunk, *args)

    monkeypatch.setattr(regions, "attack_chunk", counting)
    report = drive(run(small_slide, detector, out, resume=True))
    assert attacked == [2, 3]  # the finished chunks are kept, not attacked again
    assert report["resumed"]["tiles_kept"] == 4  # and the report says so
    assert_same_run(report, out, reference)


def test_a_chunk_whose_record_was_cut_off_is_attacked_again(
    small_slide, detector, reference, tmp_path
):
    """A stop while the journal line was being written: its tiles may be in the delta slide
    already; attacking them again changes nothing (apply is idempotent)."""
    out = tmp_path / "adv.delta.zarr"
    stop_after(run(small_slide, detector, out), chunks=3)
    journal = out / JOURNAL
    lines = journal.read_text().splitlines()
    journal.write_text("\n".join([*lines[:-1], lines[-1][: len(lines[-1]) // 2]]))
    report = drive(run(small_slide, detector, out, resume=True))
    assert_same_run(report, out, reference)


def test_resuming_with_other_settings_or_a_damaged_journal_is_refused(
    small_slide, detector, tmp_path
):
    out = tmp_path / "adv.delta.zarr"
    stop_after(run(small_slide, detector, out), chunks=1)
    with pytest.raises(CpadvError, match="another attack"):
        drive(run(small_slide, detector, out, resume=True, batch=4))
    journal = out / JOURNAL
    lines = journal.read_text().splitlines()
    journal.write_text("\n".join([lines[0], "{garbled", *lines[1:]]) + "\n")
    with pytest.raises(CpadvError, match="line 2 is damaged"):
        drive(run(small_slide, detector, out, resume=True))
    journal.unlink()
    with pytest.raises(CpadvError, match="cannot be resumed"):
        drive(run(small_slide, detector, out, resume=True))


@pytest.mark.slow
def test_cli_attack_stopped_by_ctrl_c_resumes_on_a_cluster(
    small_slide, detector, tmp_path, monkeypatch, capsys
):
    """Ctrl-C after three tiles; the same command with --resume --workers 2 finishes the
    run, and its adversarial slide is the one an uninterrupted run writes."""
    import napari_cpadv.slide.perturb as perturb
    from napari_cpadv.cli import main
    from napari_cpadv.models import weights

    path = str(weights.save(detector, tmp_path / "dae"))
    args = ["attack", str(small_slide.path), "--detector", "dae", "--weights", path,
            "--attack", "pgd", "--norm", "linf", "--unit", "per_pixel", "--budget", "4",
            "--steps", "3", "--seed", "7", "--level", "1", "--tile", "64", "--batch", "2",
            "--region", *map(str, REGION)]  # fmt: skip
    assert main([*args, "--out", str(tmp_path / "whole")]) == 0
    real, calls = perturb.apply, []

    def interrupted(*a, **k):
        calls.append(1)
        if len(calls) > 3:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(perturb, "apply", interrupted)
    stopped = tmp_path / "stopped"
    capsys.readouterr()
    assert main([*args, "--out", str(stopped)]) == 130
    assert "--resume continues it" in capsys.readouterr().err
    monkeypatch.setattr(perturb, "apply", real)
    at = args.index("--budget") + 1
    changed = [*args[:at], "8", *args[at + 1 :]]
    assert main([*changed, "--out", str(stopped), "--resume"]) == 2
    assert "budget: 4.0 then, 8.0 now" in capsys.readouterr().err
    capsys.readouterr()
    assert main([*args, "--out", str(stopped), "--resume", "--workers", "2"]) == 0
    assert json.loads(capsys.readouterr().out)["resumed"]["tiles_kept"] == 2  # one chunk
    report = json.loads((stopped / "report.json").read_text())
    assert report["tiles"] == 8 and report["workers"].startswith("LocalCluster")
    for a, b in zip(
        pyramid(stopped / "adversarial.delta.zarr"),
        pyramid(tmp_path / "whole" / "adversarial.delta.zarr"),
        strict=True,
    ):
        np.testing.assert_array_equal(a, b)
    assert main([*args, "--out", str(stopped), "--resume"]) == 2
    assert "nothing to resume" in capsys.readouterr().err


@pytest.mark.slow
def test_sweep_and_transfer_on_a_cluster_give_the_reports_of_one_process(small_slide, two_workers):
    """Budgets (a sweep) and sources (a transfer matrix) crafted one a task on two workers:
    the same success matrices and AUC-PR as in this process."""

    from napari_cpadv.annotations import Annotation
    from napari_cpadv.experiments.sweep import sweep
    from napari_cpadv.experiments.tiles import region_tiles
    from napari_cpadv.experiments.transfer import transfer
    from napari_cpadv.slide import open_slide

    torch.manual_seed(1)
    dae, sparse = make("dae"), make("sparse", atoms=8, iterations=20)
    truth = [Annotation(p.exterior, p.holes, cls="Tumor") for p in small_slide.tumours]
    tiles = region_tiles(
        open_slide(small_slide.path), 1, REGION, 64, annotations=truth, cell=dae.cell
    )
    results = []
    for where in (None, two_workers):
        swept = drive(sweep(dae, tiles, SPEC, [2.0, 8.0], noise=False, cluster=where))
        latent = AttackSpec("latent", Budget("l2", 2.0), 1, steps=2, tile=64)
        specs = {"dae": SPEC, "sparse": latent}
        moved = drive(transfer({"dae": dae, "sparse": sparse}, tiles, specs, cluster=where))
        results.append((swept, moved))
    (sweep_here, transfer_here), (sweep_there, transfer_there) = results
    assert sweep_here["success"] == sweep_there["success"]
    for here, there in zip(sweep_here["rows"], sweep_there["rows"], strict=True):
        assert here.get("aucpr") == pytest.approx(there.get("aucpr"))
        assert here["success_rate"] == there["success_rate"]
    assert transfer_here["success"] == transfer_there["success"]
    assert transfer_here["aucpr"] == transfer_there["aucpr"]


def test_each_worker_takes_its_own_gpu_where_it_sees_several(monkeypatch):
    """A LocalCluster's workers are named 0, 1, ...: worker k runs on GPU k mod count (no
    GPU here: the count and the worker are stood in for)."""
    import types

    import dask.distributed

    from napari_cpadv import device
    from napari_cpadv.inference.cluster import worker_device

    monkeypatch.setattr(device, "pick_device", lambda requested=None: torch.device("cuda"))
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    for name, want in ((0, "cuda:0"), (1, "cuda:1"), (5, "cuda:1")):
        worker = types.SimpleNamespace(name=name)
        monkeypatch.setattr(dask.distributed, "get_worker", lambda w=worker: w)
        assert worker_device(None) == want
    monkeypatch.setattr(dask.distributed, "get_worker", lambda: (_ for _ in ()).throw(ValueError))
    assert worker_device(None) == "cuda"  # the client's own process
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert worker_device(None) == "cuda"


def _task_threads():
    from napari_cpadv.inference.cluster import worker_device

    worker_device("cpu")  # what every task does first
    return torch.get_num_threads(), os.environ.get("MALLOC_TRIM_THRESHOLD_")


@pytest.mark.slow
def test_a_localcluster_task_runs_torch_on_the_threads_asked_and_glibc_as_usual():
    """dask starts workers with MKL_NUM_THREADS=1 (which torch reads before OMP's), a task
    thread starts torch on one thread anyway, and MALLOC_TRIM_THRESHOLD_=65536 made each
    attack step fault torch's buffers in again: `--threads 2` ran on one thread, 2.4x
    slower than in the client's process."""
    from napari_cpadv.inference.cluster import client

    with client(Cluster(workers=1, threads=2)) as dask_client:
        assert dask_client.submit(_task_threads, pure=False).result() == (2, None)


@pytest.mark.slow
def test_an_earlier_dask_cluster_in_the_process_does_not_slow_the_next(monkeypatch):
    """A dask nanny writes MALLOC_TRIM_THRESHOLD_=65536 into its own process's environment
    (distributed's nanny.py), so every cluster started after a plain LocalCluster inherited
    it; ours keeps it out of its workers and leaves the environment as it found it."""
    from napari_cpadv.inference.cluster import client

    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "65536")  # as a plain LocalCluster leaves it
    with client(Cluster(workers=1, threads=2)) as dask_client:
        assert dask_client.submit(_task_threads, pure=False).result() == (2, None)
    assert os.environ["MALLOC_TRIM_THRESHOLD_"] == "65536"


def test_the_plugins_clients_leave_the_default_scheduler_alone(small_slide, two_workers):
    """A cluster the plugin uses is not made the process's dask scheduler (its slides' dask
    levels hold OpenSlide handles that cannot be pickled), and tissue detection works with
    a user's own Client as the default scheduler (it failed: 'ctypes objects containing
    pointers cannot be pickled')."""
    import dask.base
    from dask.distributed import Client

    from napari_cpadv.inference.cluster import client
    from napari_cpadv.slide import open_slide
    from napari_cpadv.slide.tiles import tissue_tiles

    with client(two_workers):
        assert dask.base.get_scheduler() is None  # still the process's own
    slide = open_slide(small_slide.path)
    alone = list(tissue_tiles(slide, level=1, size=64))
    with Client(two_workers.scheduler):  # a user's: the default scheduler now
        assert list(tissue_tiles(slide, level=1, size=64)) == alone


def test_a_new_journal_is_durable_in_its_folder_too(tmp_path, monkeypatch):
    """The journal's first write fsyncs the file and then its folder's entry (a crash
    right after creating it had been able to lose the file, and with it the resume)."""
    import stat

    from napari_cpadv.experiments.chunks import Journal

    synced: list[bool] = []  # whether each fsync was of a folder
    real = os.fsync

    def fsync(fd):
        synced.append(stat.S_ISDIR(os.fstat(fd).st_mode))
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    Journal(tmp_path).start({"chunks": []})
    assert synced == [False, True]

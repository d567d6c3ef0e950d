"""dask.distributed, as every distributed command uses it: the client of a running
scheduler or of a ``LocalCluster`` started for the run, and what a worker keeps between
tasks (its opened slides and loaded detectors) and which device it runs on.

A slide path a task names must be readable by the worker at the same path (a shared
filesystem on a real cluster).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

_WORKER_STATE: dict[str, Any] = {}
K = TypeVar("K")


@dataclass(frozen=True)
class Cluster:
    """Where a run's tasks go: the running scheduler at ``scheduler``, or a ``LocalCluster``
    of ``workers`` single-threaded processes started for the run (torch uses ``threads``
    threads in each); ``device`` is the device asked of every worker (``None``: each its
    best, one GPU per worker where it sees several; see ``worker_device``)."""

    scheduler: str | None = None
    workers: int = 2
    threads: int = 1
    device: str | None = None

    def __post_init__(self) -> None:
        if self.workers < 1 or self.threads < 1:
            raise ValueError(f"workers and threads must be at least 1, not {self}")


@contextmanager
def client(cluster: Cluster) -> Iterator[Any]:
    """A client of ``cluster``, closed (with the ``LocalCluster`` it started) on leaving."""
    from dask.distributed import Client, LocalCluster

    local = None
    if cluster.scheduler is None:
        import dask

        # dask's workers start with MALLOC_TRIM_THRESHOLD_=65536 and every BLAS at one
        # thread: the first makes glibc hand torch's large buffers back to the kernel and
        # fault them in again each step (a chunk's attack measured 2.4x slower than in
        # this process), the second is what --threads sets instead. A nanny also writes
        # those values into its own process's environment, which later workers inherit:
        # dask's trim threshold left there by an earlier cluster is kept out of this spawn.
        trim = "MALLOC_TRIM_THRESHOLD_"
        poisoned = os.environ.get(trim) == "65536"
        if poisoned:
            del os.environ[trim]
        try:
            with dask.config.set({"distributed.nanny.pre-spawn-environ": {}}):
                local = LocalCluster(
                    n_workers=cluster.workers,
                    threads_per_worker=1,
                    processes=True,
                    dashboard_address=None,
                    env={
                        name: str(cluster.threads)
                        for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
                    },
                )
        finally:
            if poisoned:
                os.environ[trim] = "65536"
    # not the process's default scheduler: dask work the process computes itself (a slide's
    # dask levels, whose OpenSlide handle cannot be pickled) stays in the process, and a
    # user's own Client stays theirs
    c = Client(cluster.scheduler if cluster.scheduler else local, set_as_default=False)
    try:
        yield c
    finally:
        c.close()
        if local is not None:
            local.close()


def as_done(
    cluster: Cluster, shared: Any, task: Callable[[Any, Any, str | None], Any], items: dict[K, Any]
) -> Generator[tuple[K, Any], None, None]:
    """``task(shared, item, cluster.device)`` for each of ``items`` (by key) on the cluster's
    workers, ``shared`` sent to each worker once; ``(key, result)`` as each finishes, in any
    order. Closed early (a cancel, an error), the tasks not finished are cancelled."""
    from dask.distributed import as_completed

    with client(cluster) as dask_client:
        held = dask_client.scatter(_Held(shared), broadcast=True, hash=False)
        futures = {
            dask_client.submit(_unheld, task, held, item, cluster.device, pure=False): key
            for key, item in items.items()
        }
        try:
            for future in as_completed(list(futures), loop=dask_client.loop):
                yield futures[future], future.result()
        finally:
            dask_client.cancel(list(futures))


@dataclass(frozen=True)
class _Held:
    """What ``as_done`` scatters (a bare tuple or dict would be scattered item by item)."""

    value: Any


def _unheld(
    task: Callable[[Any, Any, str | None], Any], held: _Held, item: Any, device: Any
) -> Any:
    return task(held.value, item, device)


def worker_slide(path: str) -> Any:
    """The slide at ``path``, opened once per worker process."""
    from napari_cpadv.slide import open_slide

    key = f"slide|{path}"
    if key not in _WORKER_STATE:
        _WORKER_STATE[key] = open_slide(path)
    return _WORKER_STATE[key]


def worker_detector(name: str, weights: str | None, device: str) -> Any:
    """The detector ``name`` with ``weights``, loaded once per worker process and device."""
    from napari_cpadv.models.weights import resolve

    key = f"detector|{name}|{weights}|{device}"
    if key not in _WORKER_STATE:
        _WORKER_STATE[key] = resolve(name, weights).to(device)
    return _WORKER_STATE[key]


def worker_device(requested: str | None) -> str:
    """The device this worker runs on: ``requested`` (or the best there is), and, where the
    worker sees several GPUs and ``requested`` names none of them, one GPU per worker
    (``LocalCluster`` workers are named 0, 1, ...; a worker of another name takes the GPU
    its name hashes to). Called at the start of a task, it also gives torch the worker's
    ``OMP_NUM_THREADS`` threads in the task's thread (see ``_task_threads``)."""
    import torch

    from napari_cpadv.device import pick_device

    try:
        from dask.distributed import get_worker

        name = get_worker().name
    except ValueError:  # not in a worker: the client's own process
        name = None
    if name is not None:
        _task_threads()
    dev = str(pick_device(requested))
    count = torch.cuda.device_count() if dev == "cuda" else 0
    if count > 1 and name is not None:
        index = name if isinstance(name, int) else sum(str(name).encode())
        return f"cuda:{index % count}"
    return dev


def _task_threads() -> None:
    """torch's intra-op threads in this task thread as ``OMP_NUM_THREADS`` says: a task runs
    in an executor thread, where torch starts with one thread whatever the environment
    (measured: 1 in the task, 2 in the worker's main thread, with OMP_NUM_THREADS=2)."""
    import os

    import torch

    wanted = os.environ.get("OMP_NUM_THREADS", "")
    if wanted.isdigit() and int(wanted) > 0 and torch.get_num_threads() != int(wanted):
        torch.set_num_threads(int(wanted))

"""A reproduction as resumable steps.

Each step has a name, the inputs it depends on (its configuration and the fingerprints of
the steps it reads) and a function that writes its files into a folder and returns a small
JSON result. The step's fingerprint is the SHA-256 of its inputs in canonical JSON. A
finished step leaves ``steps/NAME.json`` (fingerprint, inputs, result, time taken) and its
folder ``NAME/``; a later run with the same fingerprint keeps both and skips the work, a
changed input runs the step again. A step's folder is written beside its place and moved
in when the step ends (``files.replacing``), so an interrupted step leaves nothing behind
and the steps before it stay finished. A step made of independent parts (Table 1a's folds)
also records each finished part in ``steps/NAME.parts.jsonl`` (``Steps.ledger``): run
again with the same fingerprint, it does only the parts not recorded.

A run may be limited to some steps (``Steps.only``: those asked for and the steps they
read, ``needed``): every other step is kept when it finished earlier with the same
fingerprint and otherwise left pending, neither run nor reported, so that a long step can
run alone over several sittings and the report assembles what exists.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from napari_cpadv.progress import Progress, Work, within

StepWork = Callable[[Path], Work[dict[str, Any]]]


def fingerprint(inputs: dict[str, Any]) -> str:
    """SHA-256 of ``inputs`` as canonical JSON (sorted keys, no spaces)."""
    text = json.dumps(inputs, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass
class Steps:
    """The finished and kept steps of one reproduction folder ``out``."""

    out: Path
    kept: list[str] = field(default_factory=list)
    ran: list[str] = field(default_factory=list)
    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    prints: dict[str, str] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    only: frozenset[str] | None = None  # the steps that may run (None: every step)
    pending: list[str] = field(default_factory=list)  # not run, and not finished before

    def record(self, name: str) -> Path:
        return self.out / "steps" / f"{name}.json"

    def folder(self, name: str) -> Path:
        return self.out / name

    def parts(self, name: str) -> Path:
        return self.out / "steps" / f"{name}.parts.jsonl"

    def ledger(self, name: str, items: list[Any]) -> Any:
        """The parts of step ``name`` (running now; ``items`` lists them, JSON-ready) that a
        stopped run of it with the same fingerprint finished, as an
        ``experiments.chunks.Ledger`` that records each part finished from now on."""
        from napari_cpadv.experiments.chunks import Journal, Ledger

        path = self.parts(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        head = {"fingerprint": self.prints[name], "chunks": items}
        return Ledger.opened(Journal(path.parent, path.name), head)

    def finished(self, name: str, print_: str) -> dict[str, Any] | None:
        """The step's stored record when it finished with this fingerprint, else ``None``."""
        path = self.record(name)
        if not path.is_file() or not self.folder(name).is_dir():
            return None
        try:
            stored = json.loads(path.read_text())
        except (OSError, ValueError):
            return None  # unreadable: run the step again
        return stored if stored.get("fingerprint") == print_ else None

    def run(
        self,
        name: str,
        inputs: dict[str, Any],
        work: StepWork,
        *,
        after: tuple[str, ...] = (),
    ) -> Work[dict[str, Any]]:
        """Run step ``name`` (or keep its finished result); ``after``: the steps it reads,
        whose fingerprints join its inputs. Returns the step's result."""
        from napari_cpadv.files import replacing, write_json

        if any(a not in self.prints for a in after):  # a step it reads is pending
            return (yield from self._pending(name))
        full = {**inputs, "after": {a: self.prints[a] for a in after}}
        print_ = fingerprint(full)
        stored = self.finished(name, print_)
        if stored is None and self.only is not None and name not in self.only:
            return (yield from self._pending(name))
        self.prints[name] = print_
        if stored is not None:
            self.kept.append(name)
            self.results[name] = stored["result"]
            self.seconds[name] = float(stored.get("seconds", 0.0))
            yield Progress(1, 1, {"step": name, "kept": 1})
            return stored["result"]
        self.record(name).unlink(missing_ok=True)  # outdated: it no longer describes the folder
        started = time.perf_counter()
        with replacing(self.folder(name)) as tmp:
            tmp.mkdir(parents=True)
            result = yield from work(tmp)
        seconds = time.perf_counter() - started
        self.record(name).parent.mkdir(parents=True, exist_ok=True)
        document = {"fingerprint": print_, "inputs": full, "result": result, "seconds": seconds}
        write_json(self.record(name), document)
        self.parts(name).unlink(missing_ok=True)  # the record holds every part now
        self.ran.append(name)
        self.results[name] = result
        self.seconds[name] = seconds
        return result


    def _pending(self, name: str) -> Work[dict[str, Any]]:
        """Step ``name`` is left pending: it is not run (and nothing reads its result)."""
        self.pending.append(name)
        yield Progress(1, 1, {"step": name, "pending": 1})
        return {"pending": True}


def needed(asked: list[str], after: dict[str, tuple[str, ...]]) -> frozenset[str]:
    """The steps ``asked`` for and every step they read, directly or not (``after``: each
    step's steps read). An unknown name is a ``ValueError`` naming the known ones."""
    unknown = [a for a in asked if a not in after]
    if unknown:
        raise ValueError(f"no step {unknown[0]!r}: choose from {', '.join(after)}")
    out: set[str] = set()
    todo = list(asked)
    while todo:
        name = todo.pop()
        if name not in out:
            out.add(name)
            todo += after[name]
    return frozenset(out)


class Paper:
    """One paper's steps over the reproduction folder of ``steps``: its data source, sizes,
    seed, device, given weights (detector name to file) and the dask cluster its
    independent parts may run on (``inference.cluster.Cluster``; ``None``: this process).
    The cluster changes where the work runs, and its numbers at most by float rounding
    (``experiments.crossval``), so it is no input of a step's fingerprint. ``AFTER``: each
    step of the paper and the steps whose files it reads, in the order they run."""

    AFTER: ClassVar[dict[str, tuple[str, ...]]] = {}

    def __init__(
        self,
        steps: Steps,
        data: Any,
        sizes: Any,
        *,
        seed: int,
        device: Any,
        weights: dict[str, str] | None = None,
        cluster: Any = None,
    ) -> None:
        from dataclasses import asdict

        from napari_cpadv import __version__

        self.steps, self.data, self.sizes = steps, data, sizes
        self.seed, self.device, self.cluster = seed, device, cluster
        self.weights = weights or {}
        self.common = {"sizes": asdict(sizes), "seed": seed, "version": __version__}

    def parts(self) -> list[tuple[str, float, Callable[[], Work[dict[str, Any]]]]]:
        """(name, share of the bar, work) of every step, in the order of ``AFTER``."""
        raise NotImplementedError

    def step(self, name: str, inputs: dict[str, Any], work: StepWork) -> Work[dict[str, Any]]:
        """Run step ``name`` of this paper (``Steps.run``), after the steps ``AFTER`` names."""
        return self.steps.run(name, inputs, work, after=self.AFTER[name])


def plan(
    steps: Steps, parts: list[tuple[str, float, Callable[[], Work[dict[str, Any]]]]]
) -> Work[None]:
    """Run ``parts`` (name, share of the bar, the step's work) in order as one bar."""
    total = sum(share for _, share, _ in parts) or 1.0
    start = 0.0
    for name, share, make in parts:
        end = start + share / total
        yield from within(make(), start, end, step=name)
        start = end

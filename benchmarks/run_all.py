"""``make bench``: rerun the command of every CPU table of BENCHMARKS.md that is not
current (issue 32), resumably.

For each table of ``table_registry.TABLES`` in order: a table that ``check_bench`` finds current
is kept; one whose output for this commit already exists under
``benchmarks/results/tables/`` is kept (a stopped run resumes where it stopped); one that
needs a GPU or has no script is skipped, saying why; every other one runs, its stdout and
stderr kept in ``benchmarks/results/tables/ID.json`` with the commit, date, machine and
seconds. The numbers then go into the table's text in BENCHMARKS.md by hand, with a new
stamp (``<!-- stamp: commit C, DATE -->``): the tables mix several runs, references and
readings that no template writes well.

With ``--all`` every CPU table runs whether current or not (the whole of BENCHMARKS.md
regenerated in one sitting, the way issue 32 asks it to be timed); the run's seconds, table
by table and in all, go to ``benchmarks/results/tables/_run_all.json`` (a run of the stale
tables only: ``_run.json``).

Usage: ``python benchmarks/run_all.py [--only ID...] [--all] [--list]``.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from check_bench import check
from table_registry import TABLES

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "tables"


def _commit() -> str:
    return subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()


def plan(only: list[str] | None, every: bool = False) -> list[tuple[str, str]]:
    """``(id, what happens)`` for every table, in order (``every``: current ones run too)."""
    stale = {t.id for t in TABLES} if every else {line.split(":")[0] for line in check(ROOT)}
    commit, out = _commit(), []
    for t in TABLES:
        done = OUT / f"{t.id}.json"
        if only and t.id not in only:
            out.append((t.id, "not asked for"))
        elif "GPU" in t.needs:
            out.append((t.id, "needs a GPU: benchmarks/gpu.sh on the device machine"))
        elif t.id not in stale:
            out.append((t.id, "current: kept"))
        elif t.command is None:
            out.append((t.id, "no script: superseded; its text says so"))
        elif not every and done.is_file() and json.loads(done.read_text()).get("commit") == commit:
            out.append((t.id, f"already run at {commit}: kept"))
        else:
            out.append(
                (t.id, f"run (about {t.minutes:g} min{'; needs ' + t.needs if t.needs else ''})")
            )
    return out


def run(table_id: str) -> dict[str, object]:
    table = next(t for t in TABLES if t.id == table_id)
    assert table.command is not None
    started, commit = time.perf_counter(), _commit()
    done = subprocess.run(table.command, cwd=ROOT, capture_output=True, text=True)
    record = {
        "table": table.id,
        "command": " ".join(table.command),
        "commit": commit,  # what ran: the commit when it started
        "commit_at_end": _commit(),  # another here: the checkout changed during the run
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {platform.node()}",
        "seconds": round(time.perf_counter() - started, 1),
        "returncode": done.returncode,
        "stdout": done.stdout,
        "stderr": done.stderr[-20000:],
    }
    OUT.mkdir(parents=True, exist_ok=True)
    if done.returncode == 0:  # a failed run is not kept as done: the next run retries it
        (OUT / f"{table.id}.json").write_text(json.dumps(record, indent=1))
    return record


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", nargs="+", default=None, metavar="ID")
    ap.add_argument("--all", action="store_true", help="run current tables too")
    ap.add_argument("--list", action="store_true", help="say what would run, run nothing")
    args = ap.parse_args(argv)
    todo = plan(args.only, args.all)
    failed, seconds, started = [], {}, time.perf_counter()
    for table_id, what in todo:
        print(f"{table_id}: {what}", flush=True)
        if args.list or not what.startswith("run"):
            continue
        record = run(table_id)
        seconds[table_id] = record["seconds"]
        print(f"  {record['seconds']} s, exit {record['returncode']}", flush=True)
        if record["returncode"]:
            failed.append(table_id)
    if seconds:
        total = round(time.perf_counter() - started, 1)
        print(f"{len(seconds)} tables in {total} s ({total / 60:.1f} min)", flush=True)
        summary = {
            "commit": _commit(),
            "date": time.strftime("%Y-%m-%d"),
            "machine": f"{platform.machine()}, {platform.node()}",
            "all": args.all,
            "seconds": seconds,
            "total_seconds": total,
            "failed": failed,
        }
        # a whole-file run's record is kept apart from the runs of stale tables after it
        (OUT / ("_run_all.json" if args.all else "_run.json")).write_text(
            json.dumps(summary, indent=1)
        )
    if failed:
        print(f"failed: {', '.join(failed)} (their stderr is above the exit status)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

"""``make check-bench``: list each table of BENCHMARKS.md that is older than what it
measures (issue 32).

A table is current when its stamp (``<!-- stamp: commit C, ... -->`` on the line after its
heading) names a commit since which nothing it depends on (``table_registry.TABLES``) has
changed, judged on the net change (a change and its revert leave a table current).
Listed, one line each: tables without a stamp, tables whose stamped commit is not in this
history, tables older than the last change to the code or data they measure (naming that
change; a change to a Python file's docstrings or comments alone does not count), and
headings of BENCHMARKS.md that no entry of ``table_registry.TABLES`` describes. Exit status 1 when
anything is listed, 0 when every table is current. A table stamped ``not measured`` (the
GPU rows, until a GPU is lent) is printed as waiting and not counted.

Usage: ``python benchmarks/check_bench.py [--root REPO]``.
"""

from __future__ import annotations

import argparse
import ast
import re
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from table_registry import TABLES, Table

STAMP = re.compile(r"<!--\s*stamp:\s*(?:commit\s+([0-9a-f]{7,40})\b|(not measured)\b)[^>]*-->")
WAITING = "not measured"  # a stamp that says so: a table whose machine (a GPU) was not lent
HEADING = re.compile(r"^#{2,4}\s+(.*)$")


def _git(root: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True)
    return done.stdout.strip() if done.returncode == 0 else ""


def stamps(text: str) -> dict[str, str | None]:
    """Each heading of BENCHMARKS.md and the commit stamped under it (``None``: none)."""
    lines = text.splitlines()
    out: dict[str, str | None] = {}
    for k, line in enumerate(lines):
        m = HEADING.match(line)
        if m:
            after = next((s for s in lines[k + 1 : k + 3] if s.strip()), "")
            found = STAMP.search(after)
            out[m.group(1).strip()] = (found.group(1) or found.group(2)) if found else None
    return out


def _code(source: str) -> str | None:
    """What a Python file does: its syntax tree without docstrings (comments never reach
    it); ``None`` when it does not parse."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (
            isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
            and body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree)


def _differs(root: Path, old: str, new: str, path: str) -> bool:
    """Whether ``path`` measures something else at ``new`` than at ``old``: any change to a
    file that is not Python; for Python, a change beyond docstrings and comments (a table is
    not made old by its code's documentation)."""
    if not path.endswith(".py"):
        return True
    before = _git(root, "show", f"{old}:{path}")
    after = _git(root, "show", f"{new}:{path}")
    return not before or not after or _code(before) != _code(after)


def _last_change(root: Path, commit: str, depends: tuple[str, ...]) -> str:
    """``"hash date subject"`` of the last commit after ``commit`` that changed the code or
    data of ``depends``; empty when none did. Judged on the net change from ``commit`` to
    HEAD: a change undone later (a revert, a refactor taken back) leaves the table current."""
    changed = _git(root, "diff", "--name-only", "--no-renames", commit, "HEAD", "--", *depends)
    net = [f for f in changed.split() if _differs(root, commit, "HEAD", f)]
    if not net:
        return ""
    revs = _git(root, "log", "--format=%H", f"{commit}..HEAD", "--", *net).split()
    for rev in revs:
        files = _git(root, "diff-tree", "--no-commit-id", "--name-only", "-r", rev, "--", *net)
        if any(_differs(root, f"{rev}^", rev, f) for f in files.split()):
            return _git(root, "log", "-1", "--format=%h %cs %s", rev)
    # each commit alone changed comments only, yet together they changed the code
    return _git(root, "log", "-1", "--format=%h %cs %s", revs[0]) if revs else "a change"


def _heading(table: Table, headings: dict[str, str | None]) -> str | None:
    return next((h for h in headings if h.startswith(table.heading)), None)


def check(
    root: Path, waiting: list[str] | None = None, tables: tuple[Table, ...] = TABLES
) -> list[str]:
    """The lines ``make check-bench`` prints: one per table that is not current (tables
    stamped ``not measured`` go to ``waiting`` instead)."""
    headings = stamps((root / "BENCHMARKS.md").read_text())
    problems: list[str] = []
    for table in tables:
        heading = _heading(table, headings)
        if heading is None:
            problems.append(f"{table.id}: no heading starting {table.heading!r} in BENCHMARKS.md")
            continue
        commit = headings[heading]
        if commit is None:
            problems.append(f"{table.id}: no stamp under its heading")
            continue
        if commit == WAITING:
            if waiting is not None:
                waiting.append(f"{table.id}: not measured yet (needs {table.needs})")
            continue
        if not _git(root, "rev-parse", "--verify", "--quiet", f"{commit}^{{commit}}"):
            problems.append(f"{table.id}: stamped commit {commit} is not in this history")
            continue
        changed = _last_change(root, commit, table.depends)
        if changed:
            problems.append(f"{table.id}: measured at {commit}; changed since: {changed[:100]}")
    described = {_heading(t, headings) for t in tables}
    problems += [
        f"BENCHMARKS.md: {h!r} is no table of table_registry.py"
        for h in headings
        if h not in described
    ]
    return problems


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--root", default=str(Path(__file__).resolve().parents[1]))
    args = ap.parse_args(argv)
    waiting: list[str] = []
    problems = check(Path(args.root), waiting)
    for line in waiting + problems:
        print(line)
    print(
        f"{len(problems)} of {len(TABLES)} tables not current"
        if problems
        else "every table is current"
    )
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

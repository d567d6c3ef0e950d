"""Writing files so that nothing is ever half-written (DESIGN.md, files): one copy of each way.

* ``write_atomic``: bytes to a temporary name beside the target, flushed and fsynced, then
  moved into place with ``os.replace``; the temporary is removed if anything fails.
* ``write_json``: the same for a JSON document (indented, a trailing newline).
* ``write_new``: bytes to a path that must not exist yet (a study's manifest and key):
  created by a hard link from the fsynced temporary, so it never overwrites; the folder
  entry is fsynced too.
* ``fsync_dir``: make a folder's entries (a file just created or renamed in it) durable.
* ``write_figure``: a matplotlib figure as ``.png`` or ``.svg`` (by extension).
* ``versions``: the versions of Python and of the libraries a result depends on, for the
  provenance every written result records.
* ``replacing``: for files and folders that another library writes (tifffile, zarr): a
  temporary path beside the target to write to; on success it is fsynced and moved into
  place (a folder replaces an existing one with two renames), on failure removed.

The temporaries are hidden (``.NAME.part``) so that a reader listing a folder mid-write
never takes one for a result.
"""

from __future__ import annotations

import io
import json
import os
import platform
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def _temporary(out: Path) -> Path:
    return out.with_name(f".{out.name}.part")


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _write_synced(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _fsync(path: Path) -> None:
    if path.is_file():
        with open(path, "rb+") as f:
            os.fsync(f.fileno())


def write_atomic(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; returns the path."""
    out = Path(path)
    tmp = _temporary(out)
    try:
        _write_synced(tmp, data)
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return out


def fsync_dir(folder: str | os.PathLike[str]) -> None:
    """Make a folder's entries (a file just created or renamed in it) durable."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_new(path: str | os.PathLike[str], data: bytes) -> Path:
    """Create ``path`` with ``data``, durably; ``FileExistsError`` if it exists."""
    out = Path(path)
    tmp = _temporary(out)
    try:
        _write_synced(tmp, data)
        os.link(tmp, out)  # fails if it exists
    finally:
        tmp.unlink(missing_ok=True)
    fsync_dir(out.parent)
    return out


def write_json(
    path: str | os.PathLike[str],
    value: Any,
    *,
    indent: int | None = 2,
    default: Callable[[Any], Any] | None = None,
    allow_nan: bool = True,
) -> Path:
    """``value`` as a JSON document at ``path``, atomically; returns the path."""
    text = json.dumps(value, indent=indent, default=default, allow_nan=allow_nan)
    return write_atomic(path, (text + "\n").encode())


def write_figure(figure: Any, path: str | os.PathLike[str]) -> Path:
    """Save a matplotlib ``figure`` as ``.png`` (150 dpi) or ``.svg``, by extension, atomically.

    Raises
    ------
    ValueError
        For another extension.
    """
    out = Path(path)
    kind = out.suffix.lower().lstrip(".")
    if kind not in ("png", "svg"):
        raise ValueError(f"{out}: plots are saved as .png or .svg")
    buf = io.BytesIO()
    figure.savefig(buf, format=kind, dpi=150)
    return write_atomic(out, buf.getvalue())


def versions() -> dict[str, str]:
    """Python's version and those of the libraries a result depends on (installed ones)."""
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for name in ("napari-cpadv", "napari", "torch", "numpy", "zarr", "openslide-python"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            continue
    return out


def provenance() -> dict[str, Any]:
    """Which code trained: the package version and, in a git checkout, the commit and whether
    the package's tracked files differed from it (``dirty``; the shipped weights being
    rewritten beside it do not count); ``None`` for either outside a checkout."""
    import subprocess

    import napari_cpadv

    package = Path(napari_cpadv.__file__).resolve().parent
    git = ["git", "-C", str(package.parent)]
    commit: str | None = None
    dirty: bool | None = None
    try:
        head = subprocess.run(
            [*git, "rev-parse", "HEAD"], capture_output=True, text=True, timeout=30
        )
        if head.returncode == 0:
            commit = head.stdout.strip()
            status = subprocess.run(
                [*git, "status", "--porcelain", "--untracked-files=no", "--", str(package)],
                capture_output=True,
                text=True,
                timeout=30,
            )
            dirty = bool(status.stdout.strip()) if status.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        pass
    return {"version": napari_cpadv.__version__, "commit": commit, "dirty": dirty}


@contextmanager
def replacing(path: str | os.PathLike[str]) -> Iterator[Path]:
    """A temporary path to write ``path``'s new content to (a file or a folder).

    On leaving the block normally the temporary is fsynced (a file) and moved into place;
    an existing folder at ``path`` is moved aside first and removed after. On an exception
    the temporary is removed and ``path`` is left as it was.
    """
    out = Path(path)
    tmp = _temporary(out)
    _remove(tmp)
    try:
        yield tmp
        _fsync(tmp)
        if tmp.is_dir() and out.is_dir():
            old = out.with_name(f".{out.name}.old")
            _remove(old)
            os.replace(out, old)
            os.replace(tmp, out)
            _remove(old)
        else:
            os.replace(tmp, out)
    except BaseException:
        _remove(tmp)
        raise

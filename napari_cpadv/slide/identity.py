"""An adversarial slide's original, recognised by content: its SHA-256 (computed once and
recorded), size and name, so that a moved or copied original is found again and a
different file of the same size is refused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from napari_cpadv.errors import SlideError

HASH_CHUNK = 2**22


def sha256_of(path: Path) -> str:
    """SHA-256 of a file's bytes, read in 4 MiB blocks."""
    import hashlib

    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(HASH_CHUNK):
            digest.update(block)
    return digest.hexdigest()


def identity_of(path: Path, sha256: str | None = None) -> dict[str, Any]:
    """What recognises the original: its content's SHA-256 (computed once, here, unless
    known), and the file's path, size, times and inode, which only spare the hash when all
    still match."""
    st = path.stat()
    return {
        "path": str(path.resolve()),
        "size": st.st_size,
        "mtime_ns": st.st_mtime_ns,
        "ctime_ns": st.st_ctime_ns,
        "inode": st.st_ino,
        "sha256": sha256 if sha256 is not None else sha256_of(path),
    }


def same_file(path: Path, record: dict[str, Any]) -> bool:
    """Whether ``path`` is the very file recorded, unchanged (no hash needed): the same
    path, size, modification and change times and inode. A copy, or another file given the
    same size and modification time, differs in inode or change time."""
    try:
        st = path.stat()
    except OSError:
        return False
    return (str(path.resolve()), st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino) == (
        record.get("path"),
        record.get("size"),
        record.get("mtime_ns"),
        record.get("ctime_ns"),
        record.get("inode"),
    )


def find_original(folder: Path, record: dict[str, Any], given: Path | None = None) -> Path:
    """The original slide of a delta, recognised by content.

    ``given`` (``--original``) is tried first, then the recorded path. A file is accepted
    when it is the very file recorded or when its SHA-256 is the recorded one.

    Raises
    ------
    SlideError
        When the original is missing, or the file found has other content.
    """
    want = record.get("sha256")
    if not isinstance(want, str):
        raise SlideError(folder, "its record of the original slide holds no SHA-256")
    candidates = [given] if given is not None else [Path(str(record.get("path")))]
    for path in candidates:
        if not path.is_file():
            raise SlideError(
                folder,
                f"its original slide {path} is missing (moved? give it with --original PATH, "
                "or record its new place with cpadv relink)",
            )
        if same_file(path, record) or sha256_of(path) == want:
            return path
        raise SlideError(
            folder,
            f"{path} is not its original slide: the content differs (SHA-256 "
            f"{want[:12]}... recorded); it has changed since the attack, or is another file",
        )
    raise SlideError(folder, "no original slide")  # pragma: no cover (one candidate)

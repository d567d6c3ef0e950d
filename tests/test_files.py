"""One way to write each kind of file, never half-written (napari_cpadv.files)."""

from __future__ import annotations

import json

import pytest

from napari_cpadv.files import replacing, write_atomic, write_json, write_new


def _litter(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.endswith((".part", ".old")))


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    out = write_atomic(tmp_path / "a.json", b"old")

    class Boom(Exception):
        pass

    with pytest.raises(Boom), replacing(out) as tmp:
        tmp.write_bytes(b"half")
        raise Boom
    assert out.read_bytes() == b"old" and _litter(tmp_path) == []
    with pytest.raises(TypeError):
        write_json(out, {"x": object()})  # not serialisable: nothing written
    assert out.read_bytes() == b"old" and _litter(tmp_path) == []


def test_a_folder_is_replaced_whole_or_not_at_all(tmp_path):
    out = tmp_path / "h.zarr"
    with replacing(out) as tmp:
        tmp.mkdir()
        (tmp / "0").write_text("first")
    with pytest.raises(RuntimeError), replacing(out) as tmp:
        tmp.mkdir()
        (tmp / "0").write_text("second, broken")
        raise RuntimeError("cancelled")
    assert (out / "0").read_text() == "first"
    with replacing(out) as tmp:
        tmp.mkdir()
        (tmp / "1").write_text("second")
    assert sorted(p.name for p in out.iterdir()) == ["1"] and _litter(tmp_path) == []


def test_json_and_write_once(tmp_path):
    out = write_json(tmp_path / "r.json", {"a": [1, 2]})
    assert out.read_text().endswith("}\n") and json.loads(out.read_text()) == {"a": [1, 2]}
    with pytest.raises(ValueError):
        write_json(tmp_path / "n.json", {"a": float("nan")}, allow_nan=False)
    key = write_new(tmp_path / "key.json", b"secret")
    with pytest.raises(FileExistsError):
        write_new(key, b"another")
    assert key.read_bytes() == b"secret" and _litter(tmp_path) == []

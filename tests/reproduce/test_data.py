"""The dataset adapters on small folders laid out as PanNuke and Camelyon16 ship."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from napari_cpadv.errors import FormatError
from napari_cpadv.progress import drive
from napari_cpadv.reproduce.data import Source, choose, pannuke_patches
from napari_cpadv.reproduce.seed000_data import HELD_OUT, camelyon_slides


def _fold(root, n: int, fold: str, *, masks_beside: bool = False):
    """PanNuke's layout: Fold k/images/foldk/{images,types}.npy, Fold k/masks/foldk/masks.npy"""
    rng = np.random.default_rng(n)
    images = rng.uniform(0, 255, size=(n, 256, 256, 3))  # PanNuke stores float64
    masks = np.zeros((n, 256, 256, 6))
    types = np.array(["Breast", "Colon", "Breast", "breast"][:n])
    # patch 0: 6 neoplastic nuclei (ids 1..6) inside the central crop, 2 inflammatory
    for k in range(6):
        masks[0, 40 + 20 * k : 50 + 20 * k, 100:110, 0] = k + 1
    masks[0, 60:70, 60:70, 1] = 7
    masks[0, 120:130, 120:130, 1] = 8
    # patch 2: one neoplastic nucleus only in the 16-pixel border the crop cuts away
    masks[2, 0:8, 0:8, 0] = 1
    # patch 3: none
    img_dir = root / f"Fold {fold}" / "images" / f"fold{fold}"
    img_dir.mkdir(parents=True)
    np.save(img_dir / "images.npy", images)
    np.save(img_dir / "types.npy", types)
    mask_dir = img_dir if masks_beside else root / f"Fold {fold}" / "masks" / f"fold{fold}"
    mask_dir.mkdir(parents=True, exist_ok=True)
    np.save(mask_dir / "masks.npy", masks)
    return images


def test_pannuke_breast_patches_counted_and_cropped(tmp_path):
    images = _fold(tmp_path, 4, "1")
    data = drive(pannuke_patches(tmp_path))
    assert len(data) == 3  # the colon patch is left out; "breast" in any case kept
    assert data.images.shape == (3, 224, 224, 3) and data.images.dtype == np.uint8
    assert np.array_equal(data.images[0], np.rint(images[0, 16:240, 16:240]).astype(np.uint8))
    assert data.tumour_nuclei.tolist() == [6, 0, 0]  # the border nucleus is cropped away
    assert data.nuclei.tolist() == [8, 0, 0]
    _, labels = data.patch_labels()
    assert labels.tolist() == [1, 0, 0]
    assert Source([str(tmp_path)]).pannuke == tmp_path


def test_pannuke_with_masks_beside_and_two_folds(tmp_path):
    _fold(tmp_path, 4, "1", masks_beside=True)
    _fold(tmp_path, 3, "2")
    assert len(drive(pannuke_patches(tmp_path))) == 3 + 2


def test_pannuke_refusals_name_the_file(tmp_path):
    _fold(tmp_path, 4, "1")
    shutil.rmtree(tmp_path / "Fold 1" / "masks")
    with pytest.raises(FormatError, match="no masks.npy"):
        drive(pannuke_patches(tmp_path))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FormatError, match="holds no images.npy"):
        drive(pannuke_patches(empty))
    with pytest.raises(FormatError, match="neither a Camelyon16 folder"):
        Source([str(empty)])
    bad = tmp_path / "bad" / "f"
    bad.mkdir(parents=True)
    np.save(bad / "images.npy", np.zeros((2, 64, 64, 3)))
    np.save(bad / "types.npy", np.array(["Breast", "Breast"]))
    np.save(bad / "masks.npy", np.zeros((2, 64, 64, 6)))
    with pytest.raises(FormatError, match="expected a PanNuke folder"):
        drive(pannuke_patches(tmp_path / "bad"))
    (bad / "images.npy").write_bytes(b"\x93NUMPY garbage")
    with pytest.raises(FormatError, match="not a NumPy array file"):
        drive(pannuke_patches(tmp_path / "bad"))


def test_choose_keeps_the_counts_it_is_asked_for(patch_folder):
    from napari_cpadv.models.data import load_tiles

    data = load_tiles([patch_folder])
    _, labels = data.patch_labels()
    picked = choose(data, 2, 3, seed=1)
    _, got = picked.patch_labels()
    assert int(got.sum()) == min(2, int(labels.sum())) and int((got == 0).sum()) == 3
    assert choose(data, 2, 3, seed=1).names == picked.names  # seeded


def _camelyon(root, small_slide):
    (root / "training" / "tumor").mkdir(parents=True)
    (root / "training" / "normal").mkdir(parents=True)
    (root / "lesion_annotations").mkdir()
    for name in ("tumor_001", HELD_OUT):
        shutil.copy(small_slide.path, root / "training" / "tumor" / f"{name}.tif")
        (root / "lesion_annotations" / f"{name}.xml").write_text("<ASAP_Annotations/>")
    shutil.copy(small_slide.path, root / "training" / "normal" / "normal_001.tif")


def test_camelyon16_layout_holds_tumor_110_out(tmp_path, small_slide):
    _camelyon(tmp_path, small_slide)
    train, (held, held_xml) = camelyon_slides(tmp_path)
    assert held.stem == HELD_OUT and held_xml.name == f"{HELD_OUT}.xml"
    assert sorted(p.stem for p, _ in train) == ["normal_001", "tumor_001"]
    assert dict((p.stem, x) for p, x in train)["normal_001"] is None
    assert Source([str(tmp_path)]).camelyon == tmp_path


def test_camelyon16_refusals(tmp_path, small_slide):
    _camelyon(tmp_path, small_slide)
    (tmp_path / "lesion_annotations" / "tumor_001.xml").unlink()
    with pytest.raises(FormatError, match="no annotations for tumor_001"):
        camelyon_slides(tmp_path)
    (tmp_path / "lesion_annotations" / "tumor_001.xml").write_text("<ASAP_Annotations/>")
    (tmp_path / "training" / "tumor" / f"{HELD_OUT}.tif").unlink()
    with pytest.raises(FormatError, match=f"no {HELD_OUT}.tif"):
        camelyon_slides(tmp_path)

"""`cpadv train NAME --field` and `cpadv evaluate --held-out` (issue 28, items 4-5), run as
a user would on the real carcinoma field: every fold trained and scored, the held-out
fold's weights kept with their stripe, that stripe scored again from the weights (not read
from the record), and every wrong argument one line and exit 2 with nothing written."""

from __future__ import annotations

import json
import shutil

import pytest

from napari_cpadv.cli import main
from napari_cpadv.progress import drive

from ..conftest import REPO

REAL = REPO / "sample_data" / "hgsc_nest.tif"
GEOJSON = REAL.with_suffix(".geojson")
TINY = ["--folds", "2", "--tile-stride", "128", "--ae-epochs", "1", "--head-epochs", "1"]


def _train(out, *extra):
    return ["train", "dae", "--field", str(REAL), "--annotations", str(GEOJSON),
            "--out", str(out), *TINY, *extra]  # fmt: skip


def _last_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    return err[-1] if err else ""


CMU = REPO / "sample_data" / "cmu_small_region.svs"
STROMA = REPO / "sample_data" / "heldout" / "hgsc_stromal.tif"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Trained as `make weights-he` trains dae-he: the CMU-1 region's tissue joins the
    autoencoder's phase."""
    out = tmp_path_factory.mktemp("he") / "weights" / "dae-he.safetensors"
    assert main(_train(out, "--unlabelled", str(CMU))) == 0
    return out


@pytest.mark.slow
def test_the_unlabelled_region_joins_the_autoencoder_and_is_recorded(trained):
    """CMU-1's region (0.499 µm per pixel) is brought to the field's level 1 (1.0 µm): its
    2,967 x 2,220 pixels become 1,480 x 1,108, 23 x 17 tiles of 64, of which the tissue
    ones (seed 000's hue rule) join the autoencoder; the record names the file by SHA-256."""
    from napari_cpadv.models.weights import sha256

    training = json.loads(trained.with_suffix(".json").read_text())["training"]
    extra = training["unlabelled"]
    assert extra["phases"] == ["autoencoder"]
    assert extra["data"] == [f"{CMU.name} (sha256 {sha256(CMU)})"]
    assert 64 <= extra["tiles"] < 23 * 17


def test_unsupervised_phases_see_the_unlabelled_tiles_and_the_head_does_not(monkeypatch):
    """``fit`` hands the joined tiles to the autoencoder (the dictionary, for sparse) and
    only the labelled ones to the head, whose loss reads the labels."""
    import numpy as np

    from napari_cpadv.models import fit as F
    from napari_cpadv.models.data import TileSet

    def tiles(n: int, label: bool, tag: str) -> TileSet:
        rng = np.random.default_rng(n)
        images = rng.integers(0, 255, (n, 16, 16, 3), dtype=np.uint8)
        masks = np.full((n, 4, 4), label)
        counts = np.full(n, -1)
        names = tuple(f"{tag}{k}" for k in range(n))
        return TileSet(images, masks, masks.mean(axis=(1, 2)), counts, counts, names)

    seen: dict[str, tuple[str, ...]] = {}

    def phase(name):
        def train(detector, data, **kwargs):
            seen[name] = data.names
            return [0.0]
            yield

        return train

    for name in ("train_dae", "train_dictionary", "train_head"):
        monkeypatch.setattr(F, name, phase(name))
    labelled, extra = tiles(4, True, "field"), tiles(3, False, "cmu")
    for detector, unsupervised in (("dae", "train_dae"), ("sparse", "train_dictionary")):
        seen.clear()
        source = F.Streamed(labelled, [str(REAL)], 1, unlabelled=extra, unlabelled_data=["c"])
        hyper = {"atoms": 4} if detector == "sparse" else {}
        _, record = drive(F.fit(detector, streamed=source, hyper=hyper))
        assert seen[unsupervised] == labelled.names + extra.names
        assert seen["train_head"] == labelled.names
        assert record["training"]["unlabelled"]["tiles"] == 3


def test_unlabelled_slides_that_would_leak_or_cannot_be_read_are_refused(tmp_path, capsys):
    """The field itself (its test stripe would reach training), the held-out stromal field,
    a classifier (no unsupervised phase), no --field, a slide coarser than the field's
    level: one line naming the file, exit 2, nothing written."""
    from napari_cpadv.slide.synthetic import make_slide

    coarse = tmp_path / "coarse.tif"
    make_slide(coarse, shape=(256, 256), seed=1, mpp=4.0)
    out = tmp_path / "w" / "x.safetensors"
    cases = [
        (_train(out, "--unlabelled", str(REAL)), REAL, "is the field itself"),
        (_train(out, "--unlabelled", str(STROMA)), STROMA, "held out (sample_data/heldout)"),
        (_train(out, "--unlabelled", str(coarse)), coarse, "coarser than the field's 1.0"),
        ([*RESNET, "--truth", str(TRUTH), "--unlabelled", str(CMU), "--out", str(out)], REAL,
         "resnet18 has no unsupervised phase"),
        (["train", "dae", str(tmp_path), "--unlabelled", str(CMU), "--out", str(out)], None,
         "--unlabelled joins a --field training"),
    ]  # fmt: skip
    for argv, named, needle in cases:
        assert main(argv) == 2, argv
        line = _last_line(capsys)
        assert needle in line and (named is None or str(named) in line), line
        assert not out.exists() and not out.with_suffix(".json").exists()


@pytest.mark.slow
def test_the_held_out_stripe_is_scored_again_from_the_weights(trained, capsys):
    record = json.loads(trained.with_suffix(".json").read_text())
    spatial = record["training"]["spatial"]
    assert record["training"]["tissue"] == "real"
    assert spatial["held_out_fold"] == 1 and spatial["gap"] == 32 and spatial["level"] == 1
    cv = spatial["crossvalidation"]
    assert [f["fold"] for f in cv["folds"]] == [0, 1]
    assert cv["folds"][1]["columns"] == spatial["held_out_columns"]
    x, y, w, h = spatial["held_out_region"]
    assert (y, h) == (0, 1500) and x == 2 * spatial["held_out_columns"][0] and x + w <= 1500

    capsys.readouterr()
    assert main(["evaluate", str(REAL), str(GEOJSON), "--detector", "dae",
                 "--weights", str(trained), "--held-out"]) == 0  # fmt: skip
    got = json.loads(capsys.readouterr().out)
    assert got["columns"] == spatial["held_out_columns"]
    assert got["aucpr"] == pytest.approx(cv["folds"][1]["aucpr"], abs=1e-6)
    assert got["shipped_aucpr"] == pytest.approx(cv["folds"][1]["reference_aucpr"], abs=1e-6)
    assert 0 < got["null_aucpr"] < 1 and "not a pathologist" in got["truth"]


@pytest.mark.slow
def test_held_out_refuses_another_slide_and_weights_without_a_stripe(trained, tmp_path, capsys):
    other = tmp_path / "other.tif"
    shutil.copy(REPO / "sample_data" / "synthetic_he.tif", other)
    shutil.copy(REPO / "sample_data" / "synthetic_he.xml", other.with_suffix(".xml"))
    capsys.readouterr()
    argv = ["evaluate", str(other), str(other.with_suffix(".xml")), "--detector", "dae"]
    assert main([*argv, "--weights", str(trained), "--held-out"]) == 2
    assert "not the field these weights were trained on (hgsc_nest.tif)" in _last_line(capsys)
    assert main([*argv, "--held-out"]) == 2  # the shipped dae: painted slides, no stripe
    assert "were not trained by `cpadv train --field`" in _last_line(capsys)


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--held-out-fold", "2"], "--held-out-fold 2: the folds are 0 to 1"),
        (["--held-out-fold", "-1"], "--held-out-fold -1: the folds are 0 to 1"),
        (["--gap", "-4"], "--gap -4: a gap is at least 0 pixels"),
        (["--level", "7"], "--level 7: the slide has"),
        (["--folds", "1"], "at least 2 folds"),
    ],
)
def test_wrong_field_arguments_are_one_line_and_exit_2(tmp_path, capsys, extra, needle):
    out = tmp_path / "w" / "x.safetensors"
    assert main(_train(out, *extra)) == 2
    line = _last_line(capsys)
    assert needle in line and str(REAL) in line
    assert not out.exists() and not out.with_suffix(".json").exists()


def test_a_gap_narrower_than_the_receptive_field_is_refused_before_training(tmp_path, capsys):
    out = tmp_path / "x.safetensors"
    assert main(_train(out, "--gap", "8")) == 2
    assert "--gap 8 is less than the dae's receptive field (32 pixels)" in _last_line(capsys)
    assert not out.exists()


def test_field_needs_its_truth_and_no_other_data(tmp_path, capsys):
    out = str(tmp_path / "x.safetensors")
    assert main(["train", "dae", "--field", str(REAL), "--out", out]) == 2
    assert "--field needs its ground truth" in _last_line(capsys)
    argv = ["train", "resnet18", "--field", str(REAL), "--annotations", str(GEOJSON)]
    assert main([*argv, "--out", out]) == 2
    assert "--field with resnet18 counts nuclei (seed 001's rule): --truth" in _last_line(capsys)


TRUTH = REAL.with_suffix(".truth.json")
RESNET = ["train", "resnet18", "--field", str(REAL), "--annotations", str(GEOJSON),
          "--truth", str(TRUTH), "--folds", "2", "--width", "4", "--epochs", "1"]  # fmt: skip


def test_the_patch_rule_counts_the_geojson_s_tumour_nuclei():
    """Seed 001's labels on the real field, counted from the truth JSON, against the
    QuPath file's `Tumor` detections (another file of the same conversion): the patches of
    a stripe, their positives (>= 5 tumour nuclei) and negatives (none)."""
    import numpy as np
    import shapely.geometry

    from napari_cpadv.annotations import read_annotations
    from napari_cpadv.experiments.spatial import Field, folds, stripe_patches, tile_set
    from napari_cpadv.slide import open_slide

    field = Field(open_slide(REAL), 0, read_annotations(GEOJSON), str(TRUTH))
    fold = folds(1500, 3, 0, cell=112)[1]
    assert (fold.c0, fold.c1) == (448, 896)
    at = stripe_patches(field, fold, 112)
    assert len(at) == 13 * 4 and all(fold.c0 <= c and c + 112 <= fold.c1 for _, c in at)
    tiles = tile_set(field, at, 112)
    feats = json.loads(GEOJSON.read_text())["features"]
    centres = np.array([
        shapely.geometry.shape(f["geometry"]).centroid.coords[0]
        for f in feats if f["properties"]["classification"]["name"] == "Tumor"
    ])  # fmt: skip
    counted = []
    for r, c in at:
        inside = (centres[:, 0] >= c) & (centres[:, 0] < c + 112)
        counted.append(int((inside & (centres[:, 1] >= r) & (centres[:, 1] < r + 112)).sum()))
    # the truth JSON's centres are the type mask's, the GeoJSON's its traced outlines: a
    # nucleus on a patch's edge may fall either side
    assert np.abs(np.array(counted) - tiles.tumour_nuclei).max() <= 1
    assert sum(counted) == pytest.approx(tiles.tumour_nuclei.sum(), abs=3)
    _, labels = tiles.patch_labels()
    assert 0 < labels.sum() < len(labels) <= len(at)


@pytest.mark.slow
def test_resnet18_trains_on_real_patches_by_stripe_and_is_scored_again(tmp_path, capsys):
    """resnet18 --field: stripes of whole 112-pixel patches at level 0, no training patch
    reaching into its fold's stripe, AUC-ROC on the stripe's patches by seed 001's rule,
    scored again from the kept weights."""
    out = tmp_path / "resnet18-he.safetensors"
    assert main([*RESNET, "--tile-stride", "112", "--out", str(out)]) == 0
    record = json.loads(out.with_suffix(".json").read_text())
    assert record["architecture"]["patch"] == 112 and record["training"]["level"] == 0
    spatial = record["training"]["spatial"]
    assert (spatial["tile"], spatial["cell"], spatial["gap"]) == (112, 112, 0)
    assert spatial["truth"] == TRUTH.name
    rows = spatial["crossvalidation"]["folds"]
    assert [r["columns"] for r in rows] == [[0, 672], [672, 1456]]
    for r in rows:
        assert 0 <= r["aucroc"] <= 1 and r["excluded"] > 0 and r["n_positive"] > 0
        assert r["patches"] == 13 * ((r["columns"][1] - r["columns"][0]) // 112)
    capsys.readouterr()
    assert main(["evaluate", str(REAL), str(GEOJSON), "--detector", "resnet18",
                 "--weights", str(out), "--held-out"]) == 0  # fmt: skip
    got = json.loads(capsys.readouterr().out)
    assert got["columns"] == [672, 1456] and got["level"] == 0
    assert got["aucroc"] == pytest.approx(rows[1]["aucroc"], abs=1e-6)
    assert got["shipped_aucroc"] == pytest.approx(rows[1]["reference_aucroc"], abs=1e-6)

"""Training on tiles streamed from slides: the same tiles, labels and training as from a
`cpadv tiles` folder, read on demand (in DataLoader workers too), no PNG written."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest

from napari_cpadv.annotations import Annotation, write_annotations
from napari_cpadv.annotations.dataset import write_tile_dataset
from napari_cpadv.annotations.stream import SlideData, SlideTiles
from napari_cpadv.cli import main
from napari_cpadv.models.data import batch_images, load_tiles, stream_tiles
from napari_cpadv.progress import drive
from napari_cpadv.slide import open_slide


@pytest.fixture(scope="module")
def source(slide_factory, tmp_path_factory):
    truth = slide_factory("train", shape=(2048, 2048), seed=5, downsamples=(1, 2))
    folder = tmp_path_factory.mktemp("stream")
    anns = [Annotation(p.exterior, p.holes, cls="Tumor") for p in truth.tumours]
    xml = write_annotations(anns, folder / "truth.xml")
    truth_json = truth.write_json(folder / "truth.truth.json")
    return SlideData(str(truth.path), str(xml), str(truth_json)), folder


def test_streamed_tiles_are_the_tiles_written(source):
    src, folder = source
    write_tile_dataset(
        open_slide(src.slide),
        src.annotations,
        level=1,
        size=64,
        out=folder / "tiles",
        truth=src.truth,
    )
    written = load_tiles([folder / "tiles"])
    streamed = drive(stream_tiles([src], level=1, size=64))
    assert isinstance(streamed.images, SlideTiles) and len(streamed) == len(written) > 10
    assert np.array_equal(streamed.images[:], written.images)  # PNG is lossless
    assert np.array_equal(streamed.masks, written.masks)
    assert np.array_equal(streamed.tumour_cells, written.tumour_cells)
    assert np.array_equal(streamed.tumour_nuclei, written.tumour_nuclei)
    assert streamed.images.shape == written.images.shape


def test_slide_tiles_index_like_an_array(source):
    src, _ = source
    data = drive(stream_tiles([src], level=1, size=64))
    whole = data.images[:]
    images = data.images
    assert np.array_equal(images[3], whole[3])
    assert np.array_equal(images[np.array([5, 1])], whole[[5, 1]])
    mask = np.zeros(len(images), bool)
    mask[[0, 2]] = True
    assert np.array_equal(images[mask], whole[mask])
    assert np.array_equal(images[2, 10:20, 5:9], whole[2, 10:20, 5:9])
    assert images[np.array([], int)].shape == (0, 64, 64, 3)
    sub = data.subset(np.array([4, 0]))
    assert isinstance(sub.images, SlideTiles) and np.array_equal(sub.images[:], whole[[4, 0]])
    again = pickle.loads(pickle.dumps(images))  # what a spawned worker receives
    assert np.array_equal(again[1], whole[1])


def test_dataloader_workers_read_the_same_batches(source):
    src, _ = source
    images = drive(stream_tiles([src], level=1, size=64)).images
    batches = [np.array([3, 0, 7]), np.array([1]), np.array([2, 4])]
    inline = list(batch_images(images, batches))
    workers = list(batch_images(images, batches, workers=2))
    assert len(workers) == 3
    for a, b in zip(inline, workers, strict=True):
        assert np.array_equal(a, b)


@pytest.mark.slow
def test_training_on_streamed_tiles_equals_training_on_the_folder(source):
    from napari_cpadv.models.detector import make
    from napari_cpadv.models.train import train_dae

    src, folder = source
    if not (folder / "tiles" / "index.csv").is_file():
        write_tile_dataset(
            open_slide(src.slide),
            src.annotations,
            level=1,
            size=64,
            out=folder / "tiles",
            truth=src.truth,
        )
    written = load_tiles([folder / "tiles"])
    streamed = drive(stream_tiles([src], level=1, size=64))
    import torch

    losses = []
    for data, workers in ((written, 0), (streamed, 2)):
        torch.manual_seed(0)
        losses.append(drive(train_dae(make("dae"), data, epochs=1, batch=8, workers=workers)))
    assert losses[0] == pytest.approx(losses[1], rel=1e-6)


@pytest.mark.slow
def test_cli_train_from_slides_writes_no_tile_file(source, tmp_path, capsys):
    src, _ = source
    work = tmp_path / "w"
    work.mkdir()
    code = main(
        [
            "train",
            "dae",
            "--slides",
            src.slide,
            "--annotations",
            src.annotations,
            "--level",
            "1",
            "--tile",
            "64",
            "--ae-epochs",
            "1",
            "--head-epochs",
            "1",
            "--holdout-slides",
            src.slide,
            "--holdout-annotations",
            src.annotations,
            "--loader-workers",
            "1",
            "--out",
            str(work / "dae.safetensors"),
        ]
    )
    assert code == 0
    record = json.loads(capsys.readouterr().out)
    assert record["training"]["data"] == [src.slide] and record["training"]["level"] == 1
    assert record["metrics"]["holdout"] == [src.slide] and "aucpr" in record["metrics"]
    assert sorted(p.name for p in work.iterdir()) == ["dae.json", "dae.safetensors"]


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--level", "1", "--tile", "64"], "one of the two"),
        (["--tile", "64"], "needs --level and --tile"),
        (["--level", "1", "--tile", "64", "--annotations", "a.xml", "b.xml"], "one per slide"),
    ],
)
def test_cli_train_from_slides_refusals(source, tmp_path, capsys, extra, message):
    src, _ = source
    folders = [str(tmp_path)] if message == "one of the two" else []  # folders and slides
    argv = ["train", "dae", *folders, "--slides", src.slide, *extra]
    assert main([*argv, "--out", str(tmp_path / "w.safetensors")]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1

"""Convert the two H&E fields that histolytics 0.3.0 ships into napari-cpadv's sample
formats (provenance, licence and the resolution's source: README.md beside this file).

    pip download --no-deps histolytics==0.3.0 -d /tmp/h
    pip install pyarrow   # to read the nuclei's GeoParquet; only for this conversion
    python sample_data/histolytics/convert.py /tmp/h/histolytics-0.3.0-py3-none-any.whl

Writes, for the carcinoma field (``hgsc_nest``, the sample) into ``sample_data/`` and for
the stromal field (``hgsc_stromal``, held out: test only) into ``sample_data/heldout/``:

- ``NAME.tif``: the JPEG's decoded pixels, exactly, as a tiled pyramidal TIFF (256-pixel
  deflate tiles with horizontal prediction, levels at downsamples 1, 2 and 4, each the 2 x 2
  mean of the one above, rounded), the resolution in its tags;
- ``NAME.geojson``: every nucleus as a QuPath detection with its class (neoplastic as
  ``Tumor``, QuPath's class for tumour, which the project's truth rule reads; connective as
  ``Stroma``; inflammatory as ``Immune cells``), the original class kept in
  ``properties.histolytics_class``;
- ``NAME.truth.json``: the nuclei as ``cpadv tiles --truth`` counts them (centroid,
  equivalent radius, neoplastic or not, class), with the slide's shape and resolution;

and copies the originals it was made from (the JPEGs, the carcinoma field's type and
instance masks, the licence) into ``sample_data/histolytics/source/``. The package itself
is never needed at run time.
"""

from __future__ import annotations

import hashlib
import io
import json
import sys
import zipfile
from pathlib import Path

import numpy as np

WHEEL_SHA256 = "de2ad5cf6a24f95637b19030c202c4969dc966e851f510418746a5b86b653137"
MPP = 0.5  # estimated from the nuclei (README.md): the files record no resolution
DOWNSAMPLES = (1, 2, 4)
TILE = 256
HERE = Path(__file__).resolve().parent
SAMPLES = HERE.parent
FIELDS = {  # name: (folder, image, nuclei, extra originals)
    "hgsc_nest": (
        SAMPLES,
        "hgsc_nest.jpg",
        "hgsc_nest.parquet",
        ("hgsc_nest_type_mask.npz", "hgsc_nest_inst_mask.npz"),
    ),
    "hgsc_stromal": (SAMPLES / "heldout", "hgsc_stromal_he.jpg", "hgsc_stromal_cells.parquet", ()),
}
CLASSES = {  # histolytics' class: (QuPath class, colour)
    "neoplastic": ("Tumor", "#C80000"),
    "connective": ("Stroma", "#96C896"),
    "inflammatory": ("Immune cells", "#A05AA0"),
}


def pyramid(pixels: np.ndarray) -> list[np.ndarray]:
    """Levels at ``DOWNSAMPLES``: each the rounded 2 x 2 mean of the one above (an odd last
    row or column dropped, as OpenSlide's level sizes floor)."""
    levels = [pixels]
    for _ in DOWNSAMPLES[1:]:
        up = levels[-1].astype(np.float64)
        r, c = up.shape[0] // 2 * 2, up.shape[1] // 2 * 2
        q = up[:r, :c].reshape(r // 2, 2, c // 2, 2, 3).mean(axis=(1, 3))
        levels.append(np.floor(q + 0.5).astype(np.uint8))
    return levels


def write_tiff(pixels: np.ndarray, out: Path, description: str) -> None:
    import tifffile

    with tifffile.TiffWriter(out) as tw:
        for k, level in enumerate(pyramid(pixels)):
            ds = DOWNSAMPLES[k]
            tw.write(
                level,
                tile=(TILE, TILE),
                compression="zlib",
                predictor="horizontal",
                photometric="rgb",
                subfiletype=1 if k else 0,
                resolution=(1e4 / (MPP * ds), 1e4 / (MPP * ds)),
                resolutionunit="CENTIMETER",
                description=description if k == 0 else None,
                software="napari-cpadv sample_data/histolytics/convert.py",
                metadata=None,
            )


def nuclei(parquet: bytes) -> tuple[list[object], list[str]]:
    import pyarrow.parquet as pq
    import shapely

    table = pq.read_table(io.BytesIO(parquet)).to_pydict()
    return list(shapely.from_wkb(table["geometry"])), list(table["class_name"])


def geojson(polygons: list[object], classes: list[str]) -> dict[str, object]:
    import shapely

    features = []
    for k, (poly, cls) in enumerate(zip(polygons, classes, strict=True)):
        name, colour = CLASSES[cls]
        features.append(
            {
                "type": "Feature",
                "id": f"nucleus-{k}",
                "geometry": shapely.geometry.mapping(poly),
                "properties": {
                    "objectType": "detection",
                    "classification": {"name": name, "color": _rgb(colour)},
                    "histolytics_class": cls,
                },
            }
        )
    return {"type": "FeatureCollection", "features": features}


def _rgb(colour: str) -> list[int]:
    return [int(colour[i : i + 2], 16) for i in (1, 3, 5)]


def truth(name: str, shape: tuple[int, int], polygons: list[object], classes: list[str]) -> dict:
    import shapely

    centroids = shapely.centroid(polygons)
    radius = np.sqrt(shapely.area(polygons) / np.pi)
    return {
        "slide": f"{name}.tif",
        "coordinates": "level-0 pixels, (x, y), origin top-left",
        "shape": list(shape),
        "mpp": MPP,
        "mpp_source": "estimated from nuclear sizes (sample_data/histolytics/README.md)",
        "downsamples": list(DOWNSAMPLES),
        "source": "histolytics 0.3.0 (BSD-3-Clause, HautaniemiLab): a segmentation model's "
        "output curated by its authors, not a pathologist's manual annotation",
        "nuclei": {
            "x": np.round(shapely.get_x(centroids), 2).tolist(),
            "y": np.round(shapely.get_y(centroids), 2).tolist(),
            "radius": np.round(radius, 2).tolist(),
            "tumour": [int(c == "neoplastic") for c in classes],
            "class": classes,
        },
    }


def main(wheel: str) -> None:
    from PIL import Image

    data = Path(wheel).read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != WHEEL_SHA256:
        sys.exit(f"{wheel}: SHA-256 {digest}, expected {WHEEL_SHA256} (histolytics 0.3.0)")
    source = HERE / "source"
    source.mkdir(exist_ok=True)
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        read = lambda name: z.read(f"histolytics/data/{name}")  # noqa: E731
        (HERE / "LICENSE").write_bytes(z.read("histolytics-0.3.0.dist-info/licenses/LICENSE"))
        for name, (folder, image, parquet, extra) in FIELDS.items():
            folder.mkdir(exist_ok=True)
            jpeg = read(image)
            (source / image).write_bytes(jpeg)
            for original in extra:
                (source / original).write_bytes(read(original))
            pixels = np.asarray(Image.open(io.BytesIO(jpeg)).convert("RGB"))
            write_tiff(pixels, folder / f"{name}.tif", f"histolytics 0.3.0 {image}, {MPP} um/px")
            polygons, classes = nuclei(read(parquet))
            with open(folder / f"{name}.geojson", "w") as f:
                json.dump(geojson(polygons, classes), f, separators=(",", ":"))
            with open(folder / f"{name}.truth.json", "w") as f:
                json.dump(truth(name, pixels.shape[:2], polygons, classes), f)
            print(name, pixels.shape, {c: classes.count(c) for c in CLASSES})


if __name__ == "__main__":
    main(sys.argv[1])

#!/usr/bin/env bash
# Fetch, here, the wheels that benchmarks/gpu.sh --wheels DIR installs on the lent GPU
# machine (Python 3.12, x86-64, torch and the scientific stack already there, no registry):
# what the core and `cpadv reproduce` need beyond that image (seen missing: OpenSlide,
# the JPEG and TIFF codecs, shapely, defusedxml, platformdirs, dask and its partd/locket).
# napari, Qt, zarr, distributed and umap are not needed by the GPU run.
#
#   benchmarks/gpu_wheels.sh [DIR]     (default .whl, which travels as the run's `carry`)
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-.whl}
mkdir -p "$dir"
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
	--implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
	--platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d "$dir" \
	openslide-python openslide-bin simplejpeg imagecodecs shapely defusedxml platformdirs \
	dask partd locket
du -sh "$dir"

# Quick start: `make demo` and `make test`. Each sets up whatever is missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.cpadv-installed
# What a headless napari needs on Debian: a virtual X display, Mesa's software GL, Qt's xcb libraries.
DEB_PACKAGES := xvfb xauth libgl1 libegl1 libgl1-mesa-dri libglx-mesa0 libxkbcommon-x11-0 \
	libxcb-icccm4 libxcb-image0 libxcb-keysyms1 libxcb-randr0 libxcb-render-util0 \
	libxcb-xinerama0 libxcb-xfixes0 libxcb-shape0 libxcb-cursor0 libdbus-1-3 libfontconfig1 \
	libxi6 libxrender1 libsm6 libice6
export QT_API ?= pyqt5
export PYTHONUNBUFFERED := 1

.PHONY: setup system-deps demo test test-fast bench bench-torchattacks lint clean weights weights-data weights-he check-weights \
	check-reproduce check-bench

setup: system-deps $(STAMP)

# Installs the display packages only when run as root on Debian and something is missing.
system-deps:
	@if [ "$$(id -u)" = 0 ] && [ -f /etc/debian_version ] && ! dpkg -s $(DEB_PACKAGES) >/dev/null 2>&1; then \
		echo "Installing the packages a headless napari needs: $(DEB_PACKAGES)"; \
		apt-get -o DPkg::Lock::Timeout=600 update -qq && DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends $(DEB_PACKAGES) >/dev/null; \
	fi

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# torch first, pinned, so that nothing later resolves a newer (CUDA) build.
$(STAMP): pyproject.toml Makefile | $(BIN)/python
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e ".[pyqt5,testing]"
	# the reference the APGD tests compare with: torchattacks declares torchvision (no CPU
	# build on the registry here), which none of its modules imports
	$(BIN)/python -m pip install -q --no-deps torchattacks==3.5.1
	touch $(STAMP)

demo: setup
	@if [ -n "$$DISPLAY" ]; then \
		$(BIN)/python -m napari_cpadv.widgets.demo; \
	else \
		echo "No display: running the demo on a virtual one, pictures and report in demo-output/"; \
		xvfb-run -a -s "-screen 0 1600x1000x24" $(BIN)/python -m napari_cpadv.widgets.demo --headless --out demo-output; \
	fi

test: setup
	$(BIN)/python -m pytest

# The edit-test loop: no display, nothing marked slow (over 2 s here: training, whole
# commands, clusters), no check-* test; under 2 minutes on 2 cores. `make test` (CI) runs
# every test but the check-* ones.
test-fast: setup
	$(BIN)/python -m pytest -p no:xvfb -m "not gui and not slow and not weights and not reproduce" -q

# The shipped detectors: five synthetic training slides (seeds 11-15) and a held-out one
# (seed 21, never trained on), level 2 tiles for the cell detectors, level-0 224-pixel
# patches for ResNet-18. The commands and the commit are recorded in each weights' JSON
# config. Sized to train on a 2-core CPU in about an hour and a half: the sparse coder has
# 128 atoms (not 512) and learns its dictionary from 60-iteration codes (its head from
# converged ones), ResNet-18 is 16 wide (not 64) and trains 6 epochs (not 25); see
# sample_data/weights/README.md. Delete a weights file to retrain it.
WDATA := build/weights-data
WOUT := sample_data/weights
TRAIN_SEEDS := 11 12 13 14 15
HOLDOUT_SEED := 21
CPADV := $(BIN)/cpadv

# The painted slides, tiles and patches the weights train on and the benchmarks read
# (no training): about five minutes on 2 cores.
weights-data: setup
	mkdir -p $(WDATA)
	for s in $(TRAIN_SEEDS) $(HOLDOUT_SEED); do \
		test -f $(WDATA)/slide$$s.tif || $(CPADV) sample $(WDATA)/slide$$s.tif --shape 8192 8192 --seed $$s >/dev/null; \
		test -f $(WDATA)/tiles$$s/index.csv || $(CPADV) tiles $(WDATA)/slide$$s.tif --annotations $(WDATA)/slide$$s.xml --level 2 --size 128 --out $(WDATA)/tiles$$s >/dev/null; \
		test -f $(WDATA)/patches$$s/index.csv || $(CPADV) tiles $(WDATA)/slide$$s.tif --annotations $(WDATA)/slide$$s.xml --truth $(WDATA)/slide$$s.truth.json --level 0 --size 224 --out $(WDATA)/patches$$s >/dev/null; \
	done

weights: weights-data
	mkdir -p $(WOUT)
	test -f $(WOUT)/dae.safetensors || $(CPADV) train dae $(foreach s,$(TRAIN_SEEDS),$(WDATA)/tiles$(s)) --holdout $(WDATA)/tiles$(HOLDOUT_SEED) \
		--ae-epochs 8 --head-epochs 100 --head-lr 3e-3 --out $(WOUT)/dae.safetensors >/dev/null
	test -f $(WOUT)/resnet18.safetensors || $(CPADV) train resnet18 $(foreach s,$(TRAIN_SEEDS),$(WDATA)/patches$(s)) --holdout $(WDATA)/patches$(HOLDOUT_SEED) \
		--width 16 --epochs 6 --out $(WOUT)/resnet18.safetensors >/dev/null
	test -f $(WOUT)/sparse.safetensors || $(CPADV) train sparse $(foreach s,$(TRAIN_SEEDS),$(WDATA)/tiles$(s)) --holdout $(WDATA)/tiles$(HOLDOUT_SEED) \
		--atoms 128 --dict-iterations 60 --head-epochs 30 --head-lr 3e-3 --out $(WOUT)/sparse.safetensors >/dev/null
	$(MAKE) check-weights

# The detectors trained on real H&E (dae-he, sparse-he, resnet18-he): spatial
# cross-validation in three stripes of the carcinoma field, the cell detectors at level 1
# (1.0 µm per pixel), the classifier on 112-pixel level-0 patches (56 µm, seed 001's
# tissue per patch) labelled by seed 001's rule from the nuclei; the last stripe's weights
# kept (their stripe never trained on; `cpadv evaluate ... --held-out` scores it). The
# stromal field stays held out. The autoencoder's and the dictionary's unsupervised phases
# also read the tissue of the CMU-1 region (no labels; at the field's 1.0 µm per pixel).
# See sample_data/weights/README.md for the times.
HE := sample_data/hgsc_nest
CMU := sample_data/cmu_small_region.svs
weights-he: setup
	test -f $(WOUT)/dae-he.safetensors || $(CPADV) train dae --field $(HE).tif \
		--annotations $(HE).geojson --level 1 --folds 3 --ae-epochs 8 --head-epochs 60 \
		--head-lr 3e-3 --unlabelled $(CMU) --out $(WOUT)/dae-he.safetensors >/dev/null
	test -f $(WOUT)/sparse-he.safetensors || $(CPADV) train sparse --field $(HE).tif \
		--annotations $(HE).geojson --level 1 --folds 3 --tile-stride 64 --atoms 128 \
		--iterations 150 --dict-iterations 60 --head-epochs 30 --head-lr 3e-3 \
		--unlabelled $(CMU) --out $(WOUT)/sparse-he.safetensors >/dev/null
	test -f $(WOUT)/resnet18-he.safetensors || $(CPADV) train resnet18 --field $(HE).tif \
		--annotations $(HE).geojson --truth $(HE).truth.json --folds 3 --width 16 \
		--epochs 10 --out $(WOUT)/resnet18-he.safetensors >/dev/null

# The shipped weights' quality checks that cost minutes (the converged sparse coder over a
# held-out tumour: about 5 minutes on 2 cores), left out of `make test` to keep CI's suite
# under 20 minutes; the weights only change here, and `make weights` ends with them.
check-weights: setup
	$(BIN)/python -m pytest -m weights

# `cpadv reproduce all --quick` end to end and resumed (about 3 minutes on 2 cores: over
# the suite's 60 s a test); `make test` runs the same at --tiny's sizes.
check-reproduce: setup
	$(BIN)/python -m pytest -m reproduce

# Every CPU table of BENCHMARKS.md that is older than what it measures, rerun (resumable:
# a table already run at this commit is kept); `make check-bench` lists the old ones.
# `make bench BENCH=--all`: every CPU table, current or not (the whole file in one sitting).
WSI_SITE := benchmarks/_work/wsi-site
bench: setup weights-data $(WSI_SITE)/napari_wsi
	$(BIN)/python benchmarks/run_all.py $(BENCH)

# napari-wsi beside the project, not in it (bench_viewer.py's reference reader): its runs
# get this folder on PYTHONPATH.
$(WSI_SITE)/napari_wsi:
	$(BIN)/python -m pip install -q --no-deps --target $(WSI_SITE) napari-wsi==1.3.0 \
		universal-pathlib pathlib-abc

check-bench:
	python3 benchmarks/check_bench.py

# torchattacks in an environment of its own (it declares torchvision, which no module of it
# imports and which has no CPU build here), with the repository on PYTHONPATH.
TAENV := benchmarks/_work/torchattacks-env
$(TAENV)/bin/python:
	$(PYTHON) -m venv $(TAENV)
	$(TAENV)/bin/python -m pip install -q torch==2.13.0
	$(TAENV)/bin/python -m pip install -q numpy scipy requests tqdm safetensors
	$(TAENV)/bin/python -m pip install -q --no-deps torchattacks==3.5.1

bench-torchattacks: $(TAENV)/bin/python
	PYTHONPATH=. $(TAENV)/bin/python benchmarks/bench_torchattacks.py

lint: setup
	$(BIN)/python -m pip install -q ruff mypy
	$(BIN)/ruff check napari_cpadv tests benchmarks
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV) demo-output .pytest_cache

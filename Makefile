# p4dsim: `make demo` and `make test` are the whole set-up on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.p4dsim-installed
ADAPTERS := $(wildcard adapters/*/pyproject.toml)

.PHONY: setup demo test lint format bench-render bench-scene bench-build bench-augment bench-fidelity bench-fidelity-quick clean sysdeps

setup: $(STAMP)

sysdeps:
	@if ! ldconfig -p 2>/dev/null | grep -q 'libusb-1.0.so.0'; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing system package libusb-1.0-0 (needed by open3d)"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libusb-1.0-0 >/dev/null) || \
	      { echo "error: could not install the system package libusb-1.0-0 (needed by open3d); install it and re-run"; exit 1; }; \
	  else \
	    echo "error: the system library libusb-1.0 is missing (needed by open3d); install the package libusb-1.0-0 (e.g. sudo apt-get install libusb-1.0-0) and re-run"; exit 1; \
	  fi; \
	fi

$(STAMP): pyproject.toml $(ADAPTERS) | sysdeps
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	# torch first and pinned: a CPU-only machine takes the local CPU build, never the CUDA wheels
	$(PIP) install -q "torch==2.13.0" || $(PIP) install -q "torch<2.14"
	$(PIP) install -q -e ".[dev,ray,mono]" $(foreach a,$(ADAPTERS),-e $(dir $(a)))
	# Waymo protos: installed without their TensorFlow/numpy pins, which cannot share an environment with torch
	$(PIP) install -q --no-deps "waymo-open-dataset-tf-2-12-0==1.6.7"
	# nuScenes devkit: installed without its numpy<2 / Shapely~=2.0.3 pins (p4dsim-nuscenes brings
	# the modules its reader imports: pyquaternion, cachetools, scikit-learn)
	$(PIP) install -q --no-deps "nuscenes-devkit==1.2.0"
	@touch $(STAMP)

demo: setup
	$(VENV)/bin/p4dsim replay scenarios/demo.yaml

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: setup
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

test: setup lint
	$(VENV)/bin/python -m pytest -q

bench-render: setup
	$(VENV)/bin/p4dsim bench

bench-scene: setup
	$(PY) benchmarks/bench_scene.py

# CPU seconds per source frame by stage, one thread; ARGS="--base main" for before/after
bench-build: setup
	$(PY) benchmarks/bench_build.py $(ARGS)

bench-augment: setup
	$(PY) benchmarks/bench_augment.py

# every dev frame at full resolution (long on a CPU); ARGS="--sections stereo" etc. to narrow
bench-fidelity: setup
	$(PY) benchmarks/bench_fidelity.py $(ARGS)

bench-fidelity-quick: setup
	$(PY) benchmarks/bench_fidelity.py --quick $(ARGS)

clean:
	rm -rf $(VENV) out .pytest_cache .ruff_cache

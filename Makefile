# Two entry points, both self-contained on a fresh Debian/Ubuntu machine with Python 3.11:
#   make demo   install everything, train the default model, export verified int8, MediaPipe and web files
#   make test   install everything, lint, run the whole test suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
DATA   := /usr/share/datasets/fashion-mnist
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# The Chromium the web page is verified in (Debian's package; fmnist checks the major version).
CHROMIUM_VERSION := 156.0.8078.129-1~deb12u1

.PHONY: demo test test-fast setup data browser lint bench gpu docs clean

# Trains only when export/ holds no finished run (`fmnist train` never overwrites one silently).
demo: setup
	@if [ -f export/metrics.json ]; then echo "export/ already holds a trained model; .venv/bin/fmnist train --overwrite retrains it"; \
	else $(BIN)/fmnist train; fi
	$(BIN)/fmnist export --quantize int8 --target mediapipe --target web
	@echo "Open the page: $(BIN)/fmnist serve export/web   (add --host 0.0.0.0 for a phone on this network)"

# Two pytest-xdist workers, on any machine: the suite's time is training, which already uses
# every core, and single-threaded start-ups (TensorFlow, converters, Chromium) that a second
# worker overlaps. More workers would only contend for the cores and memory.
PYTEST := $(BIN)/python -m pytest -n 2

test: setup lint
	$(PYTEST)

# The edit-test loop: everything but the tests marked slow (they train, convert or run a browser).
test-fast: setup lint
	$(PYTEST) -m "not slow"

# The Debian package ships the original IDX files; without apt, fmnist falls back to Keras's download.
data:
	@if [ ! -f $(DATA)/t10k-labels-idx1-ubyte.gz ] && command -v apt-get >/dev/null; then \
		$(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q dataset-fashion-mnist; \
	fi

# What --target web needs beside Python: Debian's Chromium (the browser check) and npm, which
# installs MediaPipe Tasks for Web at the version package-lock.json pins into node_modules/.
browser:
	@if ! command -v chromium >/dev/null && command -v apt-get >/dev/null; then \
		$(SUDO) apt-get update -q; \
		$(SUDO) apt-get install -y -q chromium=$(CHROMIUM_VERSION) || { \
			echo "note: chromium $(CHROMIUM_VERSION) has left Debian's archive; installing its current 156 build"; \
			$(SUDO) apt-get install -y -q chromium; }; \
	fi
	@if ! command -v npm >/dev/null && command -v apt-get >/dev/null; then \
		$(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q npm; \
	fi
	@[ node_modules/.package-lock.json -nt package-lock.json ] || npm ci --no-audit --no-fund --loglevel=error

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Re-installs only when pyproject.toml changes.
# MediaPipe (`fmnist export --target mediapipe/web`, verified by its real ImageClassifier) pins
# absl-py~=2.3 and tensorflow-model-optimization absl-py~=1.2, so pip cannot resolve both in one
# install: it goes in second, at the version fmnist_keras/compat/mediapipe.py was checked on.
# tfmot runs on absl-py 2 (tests/export/test_tfmot.py passes on it); pip notes the conflict.
$(VENV)/.installed: pyproject.toml fmnist_keras/compat/mediapipe.py | $(BIN)/python
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev,web]'
	$(BIN)/python -m pip install -q "mediapipe==$$($(BIN)/python -c 'from fmnist_keras.compat.mediapipe import CHECKED_ON as v; print(v)')"
	touch $@

setup: data browser $(VENV)/.installed

lint: setup
	$(BIN)/ruff check fmnist_keras tests tools

# PyTorch (the article's reference loop) alone, at the version of the `bench` extra: installing the
# extra itself would re-resolve the project's pins and undo mediapipe's absl-py.
bench: setup
	$(BIN)/python -m pip install -q "$$(grep -o 'torch==[0-9.]*' pyproject.toml)"
	$(BIN)/python tools/bench_accuracy.py --seeds 0 1 2
	$(BIN)/python tools/bench_train.py
	$(BIN)/python tools/bench_export.py
	$(BIN)/fmnist bench

# TensorFlow's CUDA libraries for an NVIDIA GPU, then mediapipe again: the extra re-resolves
# absl-py, which mediapipe needs at 2.x.
gpu: setup
	$(BIN)/python -m pip install -q -e '.[gpu]'
	$(BIN)/python -m pip install -q "mediapipe==$$($(BIN)/python -c 'from fmnist_keras.compat.mediapipe import CHECKED_ON as v; print(v)')"

# README pictures from the default run in export/ (run `make demo` first).
docs: setup
	$(BIN)/python tools/make_docs.py

clean:
	rm -rf $(VENV) node_modules build *.egg-info .pytest_cache .ruff_cache

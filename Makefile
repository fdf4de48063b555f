# Two entry points, both self-contained on a fresh Debian/Ubuntu machine with Python 3.11:
#   make demo   install everything, train the default model, export verified int8 and MediaPipe TFLite
#   make test   install everything, lint, run the test suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
DATA   := /usr/share/datasets/fashion-mnist
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo test test-fast setup data lint bench docs clean

# Trains only when export/ holds no finished run (`fmnist train` never overwrites one silently).
demo: setup
	@if [ -f export/metrics.json ]; then echo "export/ already holds a trained model; .venv/bin/fmnist train --overwrite retrains it"; \
	else $(BIN)/fmnist train; fi
	$(BIN)/fmnist export --quantize int8 --target mediapipe

test: setup lint
	$(BIN)/python -m pytest

# The edit-test loop: everything but the tests marked slow (they train or convert for real).
test-fast: setup lint
	$(BIN)/python -m pytest -m "not slow"

# The Debian package ships the original IDX files; without apt, fmnist falls back to Keras's download.
data:
	@if [ ! -f $(DATA)/t10k-labels-idx1-ubyte.gz ] && command -v apt-get >/dev/null; then \
		$(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q dataset-fashion-mnist; \
	fi

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Re-installs only when pyproject.toml changes.
# MediaPipe (`fmnist export --target mediapipe`, verified by its real ImageClassifier) pins
# absl-py~=2.3 and tensorflow-model-optimization absl-py~=1.2, so pip cannot resolve both in one
# install: it goes in second, at the version mediapipe_client.py is written against. tfmot runs
# on absl-py 2 (tests/test_optimize.py passes on it); pip notes the conflict and goes on.
$(VENV)/.installed: pyproject.toml fmnist_keras/deploy/mediapipe.py | $(BIN)/python
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	$(BIN)/python -m pip install -q "mediapipe==$$($(BIN)/python -c 'from fmnist_keras.deploy.mediapipe import MEDIAPIPE_VERSION as v; print(v)')"
	touch $@

setup: data $(VENV)/.installed

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

# README pictures from the default run in export/ (run `make demo` first).
docs: setup
	$(BIN)/python tools/make_docs.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache

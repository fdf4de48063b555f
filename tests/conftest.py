"""Shared fixtures. Everything runs on the real Fashion-MNIST (never synthetic data)."""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fmnist_keras.config import TrainConfig
from fmnist_keras.data.idx import FILE_STEMS, FashionMNIST, find_data_dir, load_data


@pytest.fixture(scope="session")
def real_data_dir() -> Path:
    # No skip: without the real data the suite must fail, loudly.
    return find_data_dir(download=False)


@pytest.fixture(scope="session")
def fmnist(real_data_dir) -> FashionMNIST:
    return load_data(real_data_dir)


@pytest.fixture
def data_copy(real_data_dir, tmp_path) -> Path:
    """A folder holding the four real files (symlinked) that a test may replace one by one."""
    folder = tmp_path / "data"
    folder.mkdir()
    for stem in FILE_STEMS:
        source = real_data_dir / f"{stem}.gz"
        if not source.exists():
            source = real_data_dir / stem
        (folder / source.name).symlink_to(source)
    return folder


def in_fresh_process(code: str, env: dict | None = None) -> str:
    """What `code` prints in a new interpreter (state TensorFlow and Linux keep per process:
    oneDNN's switch, AMX permission)."""
    done = subprocess.run([sys.executable, "-c", code], env={**os.environ, **(env or {})},
                          capture_output=True, text=True, check=True)  # fmt: skip
    return done.stdout.strip()


def replace_file(folder: Path, stem: str, payload: bytes) -> Path:
    """Replace the file for `stem` in `folder` with a raw (uncompressed) IDX payload."""
    for name in (stem + ".gz", stem):
        (folder / name).unlink(missing_ok=True)
    (folder / stem).write_bytes(payload)
    return folder / stem


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory, real_data_dir) -> Path:
    """A briefly trained model (2 epochs on all real training images, ~88 %), shared by export tests.

    Batch 128 rather than the default 64: a third less time on a slow 2-core CPU.
    """
    from fmnist_keras.training.loop import RunContext, train_and_evaluate

    workdir = tmp_path_factory.mktemp("trained")
    config = dataclasses.replace(TrainConfig(), epochs=2, warmup_epochs=0, batch_size=128)
    train_and_evaluate(config, workdir, RunContext(data_dir=real_data_dir, verbose=0, log=lambda *_: None))
    return workdir


@pytest.fixture
def model_copy(trained_run, tmp_path) -> Path:
    """The shared trained model copied beside its metrics, so a test may export next to it."""
    folder = tmp_path / "run"
    folder.mkdir()
    for name in ("model.keras", "metrics.json"):
        shutil.copy(trained_run / name, folder / name)
    return folder / "model.keras"


def pytest_collection_modifyitems(items):
    """A test that needs the trained fixture trains (or converts) for real: it is slow by definition."""
    for item in items:
        if {"trained_run", "model_copy"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)

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


def _train(tmp_path_factory, data_dir: Path, name: str, **changes) -> Path:
    from fmnist_keras.training.loop import RunContext, train_and_evaluate

    workdir = tmp_path_factory.mktemp(name)
    config = dataclasses.replace(TrainConfig(), warmup_epochs=0, **changes)
    train_and_evaluate(config, workdir, RunContext(data_dir=data_dir, verbose=0, log=lambda *_: None))
    return workdir


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory, real_data_dir) -> Path:
    """A briefly trained model (2 epochs on all real training images, ~88 %), shared by export tests.

    Batch 128 rather than the default 64: a third less time on a slow 2-core CPU.
    """
    return _train(tmp_path_factory, real_data_dir, "trained", epochs=2, batch_size=128)


@pytest.fixture(scope="session")
def quick_run(tmp_path_factory, real_data_dir) -> Path:
    """A real run in seconds (one epoch on 1,000 images, ~65 %), for the tests of bad input and
    file handling, which never judge what the model learned."""
    return _train(tmp_path_factory, real_data_dir, "quick", epochs=1, batch_size=100, max_train_images=1000)


@pytest.fixture(scope="session")
def demo_export(trained_run, tmp_path_factory) -> tuple[Path, str]:
    """`make demo`'s export of the trained fixture (int8, the MediaPipe file, the web page), made
    once for every test of what it publishes: (folder, what the CLI printed). Read-only: a test
    that changes a file works on a copy."""
    from typer.testing import CliRunner

    from fmnist_keras.cli import app

    folder = tmp_path_factory.mktemp("demo_export")
    args = ["export", "--model", str(trained_run / "model.keras"), "--quantize", "int8",
            "--target", "mediapipe", "--target", "web", "--output", str(folder)]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    return folder, result.output


@pytest.fixture
def model_copy(trained_run, tmp_path) -> Path:
    """The shared trained model copied beside its metrics, so a test may export next to it."""
    return _copy_run(trained_run, tmp_path)


@pytest.fixture
def quick_model_copy(quick_run, tmp_path) -> Path:
    """The quick run's model copied beside its metrics, so a test may change or export next to it."""
    return _copy_run(quick_run, tmp_path)


def _copy_run(run: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "run"
    folder.mkdir()
    for name in ("model.keras", "metrics.json"):
        shutil.copy(run / name, folder / name)
    return folder / "model.keras"


def pytest_collection_modifyitems(items):
    """Tests are marked slow by hand, by what they cost (`pytest --durations`): seconds of
    training, conversion, a 10,000-image verification or a browser. One that needs the trained
    model (directly or through a copy or an export of it) but is not marked would drag its
    training, about 25 s on a 2-core CPU, into the fast lane: a collection error."""
    unmarked = [
        item.nodeid
        for item in items
        if "trained_run" in getattr(item, "fixturenames", ()) and not item.get_closest_marker("slow")
    ]
    if unmarked:
        raise pytest.UsageError(f"mark these @pytest.mark.slow (they train or export for real): {unmarked}")

"""Shared fixtures. Everything runs on the real Fashion-MNIST (never synthetic data)."""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
from functools import partial
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


def _train(workdir: Path, data_dir: Path, **changes) -> None:
    from fmnist_keras.training.loop import RunContext, train_and_evaluate

    config = dataclasses.replace(TrainConfig(), warmup_epochs=0, **changes)
    train_and_evaluate(config, workdir, RunContext(data_dir=data_dir, verbose=0, log=lambda *_: None))


def _made_once(tmp_path_factory, name: str, make) -> tuple[Path, str]:
    """(folder, text) where `make(folder)` filled the folder and returned the text (or None).

    `make test` runs the suite in two pytest-xdist workers, each a process with its own session
    fixtures. The first worker that needs `name` makes it in the run's shared temporary folder
    while the other waits on a lock, then both read it (pytest-xdist's documented recipe): the
    trained model is trained once per run, not once per worker."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker is None:
        folder = tmp_path_factory.mktemp(name)
        return folder, make(folder) or ""
    from filelock import FileLock

    shared = tmp_path_factory.getbasetemp().parent
    folder, text = shared / name, shared / f"{name}.txt"
    with FileLock(shared / f"{name}.lock"):
        if not text.exists():  # written last: a worker that failed half-way leaves no text
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            text.write_text(make(folder) or "")
    return folder, text.read_text()


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory, real_data_dir) -> Path:
    """A briefly trained model (2 epochs on all real training images, ~88 %), shared by export tests.

    Batch 128 rather than the default 64: a third less time on a slow 2-core CPU.
    """
    train = partial(_train, data_dir=real_data_dir, epochs=2, batch_size=128)
    folder, _ = _made_once(tmp_path_factory, "trained", train)
    return folder


@pytest.fixture(scope="session")
def quick_run(tmp_path_factory, real_data_dir) -> Path:
    """A real run in seconds (one epoch on 1,000 images, ~65 %), for the tests of bad input and
    file handling, which never judge what the model learned."""
    train = partial(_train, data_dir=real_data_dir, epochs=1, batch_size=100, max_train_images=1000)
    folder, _ = _made_once(tmp_path_factory, "quick", train)
    return folder


@pytest.fixture(scope="session")
def demo_export(trained_run, tmp_path_factory) -> tuple[Path, str]:
    """`make demo`'s export of the trained fixture (int8, the MediaPipe file, the web page), made
    once for every test of what it publishes: (folder, what the CLI printed). Read-only: a test
    that changes a file works on a copy."""

    def export(folder: Path) -> str:
        from typer.testing import CliRunner

        from fmnist_keras.cli import app

        args = ["export", "--model", str(trained_run / "model.keras"), "--quantize", "int8",
                "--target", "mediapipe", "--target", "web", "--output", str(folder)]  # fmt: skip
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.output
        return result.output

    return _made_once(tmp_path_factory, "demo_export", export)


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


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    """Tests are marked slow by hand, by what they cost (`pytest --durations`): seconds of
    training, conversion, a 10,000-image verification or a browser. One that needs the trained
    model (directly or through a copy or an export of it) but is not marked would drag its
    training, about 25 s on a 2-core CPU, into the fast lane: it fails before its fixtures run.
    (A failure here, not a collection error: under pytest-xdist a worker's collection error
    reaches the terminal as an INTERNALERROR without its message.)"""
    if "trained_run" in getattr(item, "fixturenames", ()) and not item.get_closest_marker("slow"):
        pytest.fail("mark this test @pytest.mark.slow: it trains or exports for real", pytrace=False)

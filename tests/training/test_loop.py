import csv
import dataclasses
import json
import os
import platform
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fmnist_keras.cli import app

runner = CliRunner()
# A quick run on a real subset: enough to exercise every code path.
QUICK = ["--epochs", "2", "--max-train-images", "3000", "--batch-size", "100"]


def _train(output: Path, *extra: str):
    return runner.invoke(app, ["train", *QUICK, "--output", str(output), *extra])


@pytest.mark.slow  # trains a model or starts TensorFlow afresh: seconds
def test_smoke_training_writes_every_artifact(tmp_path):
    out = tmp_path / "run"
    result = _train(out)
    assert result.exit_code == 0, result.output
    assert "test accuracy" in result.output
    for name in ("model.keras", "training_log.csv", "metrics.json", "training_curves.png"):
        assert (out / name).is_file(), name
    assert not (out / ".train_state").exists()
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary leftovers
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["epochs_run"] == 2 and metrics["num_train_images"] == 3000
    assert metrics["num_test_images"] == 10_000 and metrics["num_val_images"] == 1_200  # 2 % of 60,000, 120 per class
    assert metrics["num_params"] == 29_130
    assert 0.5 < metrics["test_accuracy"] <= 1.0  # 3,000 images, 2 epochs: clearly learning
    assert metrics["config"]["epochs"] == 2 and metrics["versions"]["tensorflow"]
    assert metrics["cpu"].endswith(" cores")  # the machine beside the wall time
    with (out / "training_log.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == [0, 1]
    assert (out / "training_curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # A finished run is not silently overwritten ...
    again = _train(out)
    assert again.exit_code == 2 and "already holds a finished run" in again.output and "--overwrite" in again.output
    # ... unless asked.
    assert _train(out, "--overwrite", "--epochs", "1").exit_code == 0
    assert json.loads((out / "metrics.json").read_text())["epochs_run"] == 1


# Both dtypes, whatever "auto" picks on this CPU: bfloat16 kernels (AMX, AVX-512 BF16 or
# emulated) must be as deterministic as float32 ones.
@pytest.mark.slow  # trains a model or starts TensorFlow afresh: seconds
@pytest.mark.parametrize("precision", ["float32", "mixed"])
def test_same_seed_gives_identical_numbers(tmp_path, precision):
    from fmnist_keras.config import TrainConfig
    from fmnist_keras.training.loop import RunContext, train_and_evaluate

    config = TrainConfig(epochs=1, max_train_images=2000, batch_size=100, seed=7, precision=precision)
    quiet = RunContext(verbose=0, log=lambda *_: None)
    first = train_and_evaluate(config, tmp_path / "a", quiet)
    second = train_and_evaluate(config, tmp_path / "b", quiet)
    for key in ("test_accuracy", "test_loss", "best_val_accuracy"):
        assert first[key] == second[key], key
    # ... with the kernels fmnist chooses: oneDNN's on every x86-64 CPU.
    assert first["onednn"]["enabled"] or platform.machine() != "x86_64", first["onednn"]
    if precision == "float32":  # the seed reaches the run (once is enough: a third run costs ~3 s)
        other = train_and_evaluate(dataclasses.replace(config, seed=8), tmp_path / "c", quiet)
        assert other["test_loss"] != first["test_loss"]


@pytest.mark.slow  # trains a model or starts TensorFlow afresh: seconds
def test_nan_loss_stops_with_a_clear_message_and_no_model(tmp_path):
    out = tmp_path / "run"
    result = _train(out, "--learning-rate", "1e12", "--label-smoothing", "0")
    assert result.exit_code == 3, result.output
    assert "diverged" in result.output and "--learning-rate" in result.output
    assert not (out / "model.keras").exists() and not (out / "metrics.json").exists()


def test_interrupted_run_with_other_options_is_not_mixed_up(tmp_path):
    out = tmp_path / "run"
    (out / ".train_state").mkdir(parents=True)
    (out / ".train_state" / "config.json").write_text(json.dumps({"epochs": 99}))
    result = _train(out)
    assert result.exit_code == 2 and "interrupted run with other options" in result.output


def test_output_that_cannot_be_a_folder_is_refused(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    result = _train(blocker / "run")
    assert result.exit_code == 2 and "cannot write to output folder" in result.output
    assert "Traceback" not in result.output


@pytest.mark.slow
def test_killed_run_resumes_from_last_completed_epoch(tmp_path):
    """kill -9 after the first epoch's checkpoint, then the same command finishes the run."""
    out = tmp_path / "run"
    command = [sys.executable, "-m", "fmnist_keras", "train", "--epochs", "3", "--max-train-images", "6000",
               "--output", str(out)]  # fmt: skip
    checkpoint = out / ".train_state" / "backup" / "training_metadata.json"  # written after epoch 1
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and proc.poll() is None:
            if checkpoint.exists():
                break
            time.sleep(0.1)
        assert proc.poll() is None, "the run ended before it could be interrupted"
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait(timeout=30)
    assert not (out / "model.keras").exists()

    resumed = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "Resuming" in resumed.stdout
    assert "Epoch 1/3" not in resumed.stdout  # epoch 1 was not trained again
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["epochs_run"] == 3 and metrics["test_accuracy"] > 0.7
    with (out / "training_log.csv").open() as f:
        assert [int(r["epoch"]) for r in csv.DictReader(f)] == [0, 1, 2]
    assert not (out / ".train_state").exists()

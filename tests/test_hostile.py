"""The CLI tried as a hostile user would: every case ends in one clear line and a non-zero
exit, with nothing half-written and nothing replaced that is not ours."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from fmnist_keras import contract
from fmnist_keras.cli import app
from fmnist_keras.data.pictures import ImageError, load_image

runner = CliRunner()
LONG_NAME = "x" * 300  # one name over the 255 bytes Linux allows


def _fmnist(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fmnist_keras", *args], capture_output=True, text=True, **kwargs)


def _one_error_line(done: subprocess.CompletedProcess, code: int, expected: str) -> None:
    assert done.returncode == code, done.stderr
    assert "Traceback" not in done.stderr and "Traceback" not in done.stdout
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and expected in lines[0], done.stderr


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["export", "--output", ""], "is empty"),
        (["evaluate", "m.keras", "--output", ""], "is empty"),
        (["export", "--quantize", "float16", "--io", "int8"], "--io applies to --quantize int8 only"),
        (["bench", "--runs", str(10**12)], "--runs"),
        (["export", "--quantize", "int8", "--qat", "--qat-epochs", str(10**9)], "--qat-epochs"),
    ],
)
def test_options_that_would_be_ignored_or_run_for_years_are_refused(args, expected):
    result = runner.invoke(app, args)
    assert result.exit_code == 2 and expected in result.output and "Traceback" not in result.output


def test_a_path_longer_than_the_system_allows_is_one_line(tmp_path):
    done = _fmnist("export", "--model", str(tmp_path / LONG_NAME / "model.keras"), "--output", str(tmp_path / "o"))
    _one_error_line(done, 2, "longer than this system allows")
    with pytest.raises(ImageError, match="cannot be read"):
        load_image(tmp_path / f"{LONG_NAME}.png")  # predict reports it as that file's error


@pytest.mark.parametrize("kind", ["fifo", "char device"])
def test_an_output_that_is_a_device_or_fifo_is_never_renamed_over(kind, tmp_path):
    target = tmp_path / "null"
    if kind == "fifo":
        os.mkfifo(target)
    else:
        if os.geteuid() != 0:
            pytest.skip("making a device node needs root (CI runs as root)")
        os.mknod(target, 0o666 | 0o020000, os.makedev(1, 3))  # a copy of /dev/null
    result = runner.invoke(app, ["evaluate", "any.keras", "--output", str(target)])
    assert result.exit_code == 2 and "is a device, FIFO or folder, not a file" in result.output
    assert not target.is_file() and target.exists()  # still the device / FIFO it was


def test_a_fifo_or_device_given_as_a_picture_says_what_it_is(tmp_path):
    os.mkfifo(tmp_path / "pipe.png")
    with pytest.raises(ImageError, match="not a regular file"):
        load_image(tmp_path / "pipe.png")
    with pytest.raises(ImageError, match="not a regular file"):
        load_image(Path("/dev/zero"))


@pytest.mark.parametrize(
    ("inputs", "outputs", "expected"),
    [
        ([([2, 28, 28, 1], "float32")], [([2, 10], "float32")], "its batch is fixed at 2"),
        ([([1, 28, 28, 1], "uint8")], [([1, 10], "int32")], "its output is int32"),
        ([([1, 28, 28, 1], "float32")], [([1, 10], "float32")], None),
        ([([-1, 28, 28, 1], "float32")], [([-1, 10], "float32")], None),
    ],
)
def test_the_contract_check_refuses_a_fixed_batch_and_non_logit_outputs(inputs, outputs, expected):
    problem = contract.problem(inputs, outputs)
    assert problem == expected if expected is None else expected in problem


def test_a_folder_named_metrics_json_is_not_a_finished_run(tmp_path):
    (tmp_path / "metrics.json").mkdir()
    result = runner.invoke(app, ["train", "--epochs", "1", "--max-train-images", "100", "--output", str(tmp_path)])
    assert result.exit_code == 2 and "is a folder, not a finished run's metrics" in result.output


def test_a_metrics_json_of_another_model_or_with_nan_is_refused(quick_model_copy, tmp_path):
    from fmnist_keras.model.cnn import build_model

    metrics = quick_model_copy.parent / "metrics.json"
    record = json.loads(metrics.read_text())
    assert len(record["model_sha256"]) == 64  # fmnist train ties metrics.json to its model file
    build_model().save(tmp_path / "other.keras")
    shutil.copy(tmp_path / "other.keras", quick_model_copy)  # another model beside the same metrics.json
    result = runner.invoke(app, ["export", "--model", str(quick_model_copy), "--output", str(tmp_path / "o")])
    assert result.exit_code == 2 and "describes another model than" in result.output
    record.pop("model_sha256")
    metrics.write_text(json.dumps(record).replace(f'"test_accuracy": {record["test_accuracy"]}',
                                                  '"test_accuracy": NaN'))  # fmt: skip
    result = runner.invoke(app, ["export", "--model", str(quick_model_copy), "--output", str(tmp_path / "o")])
    assert result.exit_code == 2 and "test_accuracy is nan, not a finite number" in result.output
    assert not (tmp_path / "o").exists()


@pytest.mark.slow  # starts TensorFlow in a new process: seconds
def test_predict_into_a_full_stdout_is_one_line(quick_run, fmnist, tmp_path):
    np.save(tmp_path / "x.npy", fmnist.x_test[:3])
    with open("/dev/full", "w") as full:
        done = subprocess.run([sys.executable, "-m", "fmnist_keras", "predict", str(quick_run / "model.keras"),
                               str(tmp_path / "x.npy")], stdout=full, stderr=subprocess.PIPE, text=True)  # fmt: skip
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1] == "error: cannot write the output (No space left on device)"


@pytest.mark.slow
def test_a_second_train_into_a_folder_in_use_is_refused_and_the_first_finishes(tmp_path):
    import time

    # After taking its lock, the first run starts TensorFlow and trains 6 short epochs (4,000
    # images each): 8 s or more on the fastest CPU we have. Meanwhile the others start, load the
    # data and are refused: about 2 s. The assert below says so if a machine ever outruns that.
    args = ["train", "--epochs", "6", "--max-train-images", "4000", "--output", str(tmp_path)]
    first = subprocess.Popen([sys.executable, "-m", "fmnist_keras", *args], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)  # fmt: skip
    lock = tmp_path / ".train_state.lock"
    deadline = time.monotonic() + 60
    while not lock.exists() and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert lock.read_text() == str(first.pid)
    others = [subprocess.Popen([sys.executable, "-m", "fmnist_keras", *args, *extra], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True) for extra in ([], ["--overwrite"])]  # fmt: skip
    for other in others:
        stdout, stderr = other.communicate(timeout=120)
        _one_error_line(subprocess.CompletedProcess(other.args, other.returncode, stdout, stderr), 2,
                        f"another fmnist train (pid {first.pid}) is using {tmp_path}")  # fmt: skip
    assert first.poll() is None, "the first run finished before the others were refused: the test proved nothing"
    _, stderr = first.communicate(timeout=300)
    assert first.returncode == 0, stderr
    assert (tmp_path / "metrics.json").is_file() and not lock.exists()


def test_a_gzip_bomb_among_the_data_files_is_refused_before_it_fills_memory(data_copy):
    import gzip
    import resource

    from fmnist_keras.data.idx import load_data
    from fmnist_keras.errors import DataError

    target = data_copy / "t10k-labels-idx1-ubyte.gz"
    target.unlink()
    with gzip.open(target, "wb", compresslevel=9) as bomb:  # about 250 KB that inflates to 256 MiB
        zeros = bytes(1 << 24)
        for _ in range(16):
            bomb.write(zeros)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(DataError, match="decompresses to more than"):
        load_data(data_copy)
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mib < 200, grown_mib  # the train images alone are 45 MiB; the bomb inflates to 256 MiB


def test_an_output_that_cannot_be_written_is_refused_before_any_conversion(tmp_path):
    (tmp_path / "a-file").write_text("not a folder")
    done = _fmnist("export", "--model", str(tmp_path / "missing.keras"), "--output", str(tmp_path / "a-file" / "out"))
    _one_error_line(done, 2, "is not a folder")  # found before the model is even read


def test_a_zip_bomb_posing_as_a_keras_file_is_refused_unread(tmp_path):
    import zipfile

    from fmnist_keras.errors import ModelFileError
    from fmnist_keras.runtimes.keras_file import MAX_UNPACKED_BYTES, load_trained_model

    bomb = tmp_path / "model.keras"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("model.weights.h5", bytes(MAX_UNPACKED_BYTES + 1))  # 64 MiB of zeros, 64 KB zipped
    assert bomb.stat().st_size < 1_000_000
    with pytest.raises(ModelFileError, match="would unpack to"):
        load_trained_model(bomb)


def test_a_phone_photo_is_read_upright_as_its_exif_orientation_says(fmnist, tmp_path):
    from PIL import Image

    boot = np.kron(255 - fmnist.x_test[0], np.ones((8, 8), dtype=np.uint8))  # dark on white, upright
    upright, sideways = tmp_path / "upright.jpg", tmp_path / "sideways.jpg"
    Image.fromarray(boot).save(upright, quality=95)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to view": how phones store a portrait photo
    Image.fromarray(np.rot90(boot, 1)).save(sideways, quality=95, exif=exif)
    difference = np.abs(load_image(sideways).astype(int) - load_image(upright).astype(int))
    assert difference.max() <= 8  # the same picture (JPEG noise aside), not a rotated one

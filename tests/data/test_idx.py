import gzip

import numpy as np
import pytest
from typer.testing import CliRunner

from fmnist_keras import contract
from fmnist_keras.cli import app
from fmnist_keras.data import idx as data
from fmnist_keras.errors import DataError
from tests.conftest import replace_file

runner = CliRunner()


def test_real_files_load_with_shapes_dtypes_and_balanced_classes(fmnist):
    assert fmnist.x_train.shape == (60_000, 28, 28) and fmnist.x_train.dtype == np.uint8
    assert fmnist.y_train.shape == (60_000,) and fmnist.y_train.dtype == np.uint8
    assert fmnist.x_test.shape == (10_000, 28, 28) and fmnist.x_test.dtype == np.uint8
    assert fmnist.y_test.shape == (10_000,)
    assert np.bincount(fmnist.y_train).tolist() == [6_000] * 10
    assert np.bincount(fmnist.y_test).tolist() == [1_000] * 10
    assert fmnist.x_train.max() == 255 and fmnist.x_train.min() == 0


def test_class_names_are_the_ten_in_index_order():
    assert len(contract.CLASS_NAMES) == 10
    assert contract.CLASS_NAMES[0] == "T-shirt/top" and contract.CLASS_NAMES[9] == "Ankle boot"


def _raw(folder, stem):
    path = folder / f"{stem}.gz"
    return gzip.decompress(path.read_bytes()) if path.exists() else (folder / stem).read_bytes()


def _truncated_gzip(folder):
    blob = (folder / "t10k-labels-idx1-ubyte.gz").read_bytes()
    (folder / "t10k-labels-idx1-ubyte.gz").unlink()
    (folder / "t10k-labels-idx1-ubyte.gz").write_bytes(blob[: len(blob) // 2])
    return "truncated or corrupt gzip"


def _wrong_magic(folder):
    raw = bytearray(_raw(folder, "t10k-images-idx3-ubyte"))
    raw[3] = 0x01
    replace_file(folder, "t10k-images-idx3-ubyte", bytes(raw))
    return "magic number 0x00000801"


def _count_mismatch(folder):
    raw = bytearray(_raw(folder, "t10k-labels-idx1-ubyte"))
    raw[4:8] = (9_999).to_bytes(4, "big")
    replace_file(folder, "t10k-labels-idx1-ubyte", bytes(raw[:-1]))
    return "10,000 images but"


def _label_ten(folder):
    raw = bytearray(_raw(folder, "t10k-labels-idx1-ubyte"))
    raw[8 + 17] = 10
    replace_file(folder, "t10k-labels-idx1-ubyte", bytes(raw))
    return "label 10 at index 17"


def _missing_file(folder):
    (folder / "train-labels-idx1-ubyte.gz").unlink()
    return "lacks train-labels-idx1-ubyte"


def _empty_folder(folder):
    for path in folder.iterdir():
        path.unlink()
    return "lacks train-images-idx3-ubyte"


def _one_pixel_changed(folder):
    raw = bytearray(_raw(folder, "t10k-images-idx3-ubyte"))
    raw[16 + 400] ^= 0xFF
    replace_file(folder, "t10k-images-idx3-ubyte", bytes(raw))
    return "not the published Fashion-MNIST file"


def _wrong_image_size(folder):
    raw = bytearray(_raw(folder, "t10k-images-idx3-ubyte"))
    raw[8:12] = (32).to_bytes(4, "big")
    replace_file(folder, "t10k-images-idx3-ubyte", bytes(raw))
    return "32x28 images, expected 28x28"


@pytest.mark.parametrize(
    "corrupt",
    [
        _truncated_gzip,
        _wrong_magic,
        _count_mismatch,
        _label_ten,
        _missing_file,
        _empty_folder,
        _one_pixel_changed,
        _wrong_image_size,
    ],  # fmt: skip
)
def test_corrupt_data_gives_one_clear_line_and_exit_code_2(corrupt, data_copy, tmp_path):
    expected = corrupt(data_copy)
    result = runner.invoke(app, ["train", "--data-dir", str(data_copy), "--output", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    assert expected in result.output
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "out" / "model.keras").exists()


def test_env_var_names_the_data_folder(monkeypatch, data_copy):
    monkeypatch.setenv("FMNIST_DATA", str(data_copy))
    assert data.find_data_dir() == data_copy


def test_search_order_skips_incomplete_folders(tmp_path, real_data_dir, monkeypatch):
    monkeypatch.delenv("FMNIST_DATA", raising=False)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert data.find_data_dir(search_dirs=[empty, real_data_dir], download=False) == real_data_dir


def test_no_data_and_no_network_names_the_places_and_the_fixes(tmp_path, monkeypatch):
    monkeypatch.delenv("FMNIST_DATA", raising=False)

    def offline(target):
        raise OSError("network is unreachable")

    monkeypatch.setattr(data, "_download", offline)
    places = [tmp_path / "a", tmp_path / "b"]
    with pytest.raises(DataError) as excinfo:
        data.find_data_dir(search_dirs=places)
    message = str(excinfo.value)
    assert str(places[0]) in message and str(places[1]) in message
    assert "apt-get install dataset-fashion-mnist" in message and "network" in message


def test_stratified_split_is_disjoint_balanced_and_seeded(fmnist):
    train, held = data.stratified_split(fmnist.y_train, 0.1, seed=3)
    assert len(np.intersect1d(train, held)) == 0 and len(train) + len(held) == 60_000
    assert np.bincount(fmnist.y_train[held]).tolist() == [600] * 10
    again, _ = data.stratified_split(fmnist.y_train, 0.1, seed=3)
    other, _ = data.stratified_split(fmnist.y_train, 0.1, seed=4)
    assert np.array_equal(train, again) and not np.array_equal(train, other)


def test_stratified_sample_spreads_over_classes(fmnist):
    chosen = data.stratified_sample(fmnist.y_train, 505, seed=0)
    counts = np.bincount(fmnist.y_train[chosen], minlength=10)
    assert counts.sum() == 505 and counts.max() - counts.min() <= 1

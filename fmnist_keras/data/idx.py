"""Finding, reading and validating the real Fashion-MNIST IDX files.

Only numpy is needed when the files are on disk. Every file is checked
(magic number, shape, counts, label range, SHA-256 of the decompressed bytes)
before any pixel is used, so a damaged copy fails loudly instead of training
a subtly wrong model.
"""

from __future__ import annotations

# Keras is imported inside the functions that need it: importing this module (and `fmnist --help`) stays fast.
import gzip
import hashlib
import os
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from fmnist_keras.contract import IMAGE_SHAPE, NUM_CLASSES, SIDE
from fmnist_keras.errors import DataError, first_line

# SHA-256 of the *decompressed* IDX bytes: Debian recompressed the .gz files,
# so hashes of the archives differ between mirrors while the content does not.
_SHA256 = {
    "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}
FILE_STEMS = tuple(_SHA256)
_EXPECTED_COUNT = {"train": 60_000, "t10k": 10_000}
_IMAGES_MAGIC, _LABELS_MAGIC = 0x00000803, 0x00000801

# Keras's own mirror of the original files, as used by keras.datasets.fashion_mnist.
DOWNLOAD_BASE_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
ENV_VAR = "FMNIST_DATA"


@dataclass(frozen=True)
class FashionMNIST:
    x_train: np.ndarray  # (60000, 28, 28) uint8
    y_train: np.ndarray  # (60000,) uint8
    x_test: np.ndarray  # (10000, 28, 28) uint8
    y_test: np.ndarray  # (10000,) uint8
    source: Path


def data_dir_from_env() -> Path | None:
    """The only place the library reads the environment."""
    value = os.environ.get(ENV_VAR, "").strip()
    return Path(value).expanduser() if value else None


def default_search_dirs() -> list[Path]:
    return [Path("~/.keras/datasets/fashion-mnist").expanduser(), DEBIAN_DIR]


def _file_in(directory: Path, stem: str) -> Path | None:
    for name in (stem + ".gz", stem):
        if (directory / name).is_file():
            return directory / name
    return None


def _is_complete(directory: Path) -> bool:
    return all(_file_in(directory, stem) for stem in FILE_STEMS)


def _download(target: Path) -> None:
    import keras  # only here: reading files from disk must not need Keras

    for stem in FILE_STEMS:
        keras.utils.get_file(
            fname=stem + ".gz",
            origin=DOWNLOAD_BASE_URL + stem + ".gz",
            cache_dir=str(target.parent.parent),
            cache_subdir=f"{target.parent.name}/{target.name}",
        )


def find_data_dir(
    data_dir: Path | None = None,
    *,
    search_dirs: list[Path] | None = None,
    download: bool = True,
) -> Path:
    """Return the folder holding the four IDX files.

    An explicit folder (`data_dir`, else $FMNIST_DATA) is authoritative: it must
    hold all four files. Otherwise the default places are searched in order, and
    as a last resort the files are downloaded into the Keras cache.
    """
    explicit = data_dir if data_dir is not None else data_dir_from_env()
    if explicit is not None:
        if not explicit.is_dir():
            what = "is a file, not a folder" if explicit.exists() else "does not exist"
            raise DataError(f"data folder {explicit} {what}; pass a folder holding the Fashion-MNIST IDX files")
        missing = [stem for stem in FILE_STEMS if _file_in(explicit, stem) is None]
        if missing:
            raise DataError(
                f"{explicit} lacks {', '.join(m + '[.gz]' for m in missing)}; "
                "copy the four Fashion-MNIST IDX files there or drop --data-dir/FMNIST_DATA"
            )
        return explicit

    searched = default_search_dirs() if search_dirs is None else search_dirs
    for directory in searched:
        if _is_complete(directory):
            return directory
    if download:
        target = searched[0]
        try:
            _download(target)
        except Exception as exc:  # noqa: BLE001 - any failure means "no network"
            raise DataError(
                f"Fashion-MNIST not found in {', '.join(map(str, searched))} and the download failed "
                f"({first_line(exc)}); run `apt-get install dataset-fashion-mnist`, or allow network access"
            ) from None
        if _is_complete(target):
            return target
    raise DataError(
        f"Fashion-MNIST not found in {', '.join(map(str, searched))}; "
        "run `apt-get install dataset-fashion-mnist`, or allow network access for the download"
    )


# The largest Fashion-MNIST file, train-images-idx3-ubyte, is 47,040,016 bytes: a file that
# would decompress to more is refused before it fills memory (a gzip bomb).
MAX_IDX_BYTES = 60_000 * SIDE * SIDE + 16


def _gunzip_bounded(raw: bytes, path: Path) -> bytes:
    inflate = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    data = inflate.decompress(raw, MAX_IDX_BYTES + 1)
    if len(data) > MAX_IDX_BYTES:
        raise DataError(f"{path} decompresses to more than the {MAX_IDX_BYTES:,} bytes of any Fashion-MNIST "
                        "file; it is not one (reinstall or re-download it)")  # fmt: skip
    if not inflate.eof:
        raise EOFError("compressed file ended before the end-of-stream marker was reached")
    return data


def _read_bytes(path: Path) -> bytes:
    try:
        if path.stat().st_size > MAX_IDX_BYTES:
            raise DataError(f"{path} holds {path.stat().st_size:,} bytes, more than any Fashion-MNIST file "
                            f"({MAX_IDX_BYTES:,}); it is not one (reinstall or re-download it)")  # fmt: skip
        raw = path.read_bytes()
        return _gunzip_bounded(raw, path) if raw[:2] == b"\x1f\x8b" else raw
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise DataError(f"{path} is a truncated or corrupt gzip file ({exc}); reinstall or re-download it") from None
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror or exc}") from None


def read_idx(path: Path, *, images: bool) -> tuple[np.ndarray, str]:
    """Parse one IDX file into a uint8 array and the SHA-256 of its decompressed bytes."""
    data = _read_bytes(path)
    ndim = 3 if images else 1
    header_len = 4 + 4 * ndim
    if len(data) < header_len:
        raise DataError(f"{path} is too short to be an IDX file ({len(data)} bytes)")
    magic = int.from_bytes(data[:4], "big")
    expected_magic = _IMAGES_MAGIC if images else _LABELS_MAGIC
    if magic != expected_magic:
        raise DataError(
            f"{path} has IDX magic number 0x{magic:08x}, expected 0x{expected_magic:08x}; "
            f"it is not a Fashion-MNIST {'image' if images else 'label'} file"
        )
    dims = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    if images and dims[1:] != IMAGE_SHAPE:
        raise DataError(f"{path} holds {dims[1]}x{dims[2]} images, expected {SIDE}x{SIDE}")
    expected_len = header_len + int(np.prod(dims))
    if len(data) != expected_len:
        raise DataError(
            f"{path} has {len(data)} bytes but its header announces {expected_len}; the file is truncated or padded"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header_len).reshape(dims), hashlib.sha256(data).hexdigest()


def _load_split(directory: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    images_path = _file_in(directory, f"{split}-images-idx3-ubyte")
    labels_path = _file_in(directory, f"{split}-labels-idx1-ubyte")
    images, images_sha = read_idx(images_path, images=True)
    labels, labels_sha = read_idx(labels_path, images=False)
    if len(images) != len(labels):
        raise DataError(f"{images_path} holds {len(images):,} images but {labels_path} holds {len(labels):,} labels")
    if len(images) != _EXPECTED_COUNT[split]:
        raise DataError(f"{images_path} holds {len(images):,} images, expected {_EXPECTED_COUNT[split]:,}")
    bad = np.flatnonzero(labels >= NUM_CLASSES)
    if bad.size:
        raise DataError(f"{labels_path} has label {labels[bad[0]]} at index {bad[0]}; labels must be in 0..9")
    for path, stem, digest in (
        (images_path, f"{split}-images-idx3-ubyte", images_sha),
        (labels_path, f"{split}-labels-idx1-ubyte", labels_sha),
    ):
        if digest != _SHA256[stem]:
            raise DataError(
                f"{path} is not the published Fashion-MNIST file (SHA-256 {digest[:12]}... differs); reinstall it"
            )
    return images, labels


def load_data(data_dir: Path | None = None, *, download: bool = True) -> FashionMNIST:
    """Find, validate and load the dataset as uint8 arrays."""
    directory = find_data_dir(data_dir, download=download)
    x_train, y_train = _load_split(directory, "train")
    x_test, y_test = _load_split(directory, "t10k")
    return FashionMNIST(x_train, y_train, x_test, y_test, source=directory)


class Split(NamedTuple):
    """Training images and labels, and the validation images and labels held out of them."""

    x: np.ndarray
    y: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray


def training_split(dataset, validation_split: float, seed: int, max_images: int | None = None) -> Split:
    """The stratified hold-out every training run uses, training on the first `max_images` of
    the rest (None: all). Fine-tunes reuse it, so they never train on the validation images
    of the model they start from."""
    train_idx, val_idx = stratified_split(dataset.y_train, validation_split, seed)
    train_idx = train_idx[:max_images]
    return Split(dataset.x_train[train_idx], dataset.y_train[train_idx], dataset.x_train[val_idx],
                 dataset.y_train[val_idx])  # fmt: skip


def stratified_split(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, held_out) with `fraction` of every class held out, reproducibly."""
    rng = np.random.default_rng(seed)
    held_out = []
    for cls in range(NUM_CLASSES):
        idx = np.flatnonzero(labels == cls)
        held_out.append(rng.permutation(idx)[: int(round(len(idx) * fraction))])
    held = np.sort(np.concatenate(held_out))
    train = np.setdiff1d(np.arange(len(labels)), held, assume_unique=True)
    return rng.permutation(train), held


def stratified_sample(labels: np.ndarray, count: int, seed: int) -> np.ndarray:
    """`count` indices spread as evenly as possible over the 10 classes."""
    rng = np.random.default_rng(seed)
    per_class = [rng.permutation(np.flatnonzero(labels == c)) for c in range(NUM_CLASSES)]
    quota = [count // NUM_CLASSES + (1 if c < count % NUM_CLASSES else 0) for c in range(NUM_CLASSES)]
    chosen = np.concatenate([idx[:q] for idx, q in zip(per_class, quota, strict=True)])
    return np.sort(chosen)

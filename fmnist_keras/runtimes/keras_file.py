"""Load a trained `.keras` file safely and check that it is this model."""

from __future__ import annotations

# Keras is imported inside the functions that need it: importing this module (and `fmnist --help`) stays fast.
import hashlib
import zipfile
from pathlib import Path

import numpy as np

from fmnist_keras.contract import INPUT_SHAPE, NUM_CLASSES
from fmnist_keras.errors import ModelFileError, first_line


def load_trained_model(path: Path):
    """Load with Keras safe mode (no Lambda/pickled code runs) and check the contract, the
    weights (all finite) and, before reading, the archive (no bomb)."""
    import keras

    path = Path(path)
    _check_file(path)
    try:
        model = keras.models.load_model(path, compile=False, safe_mode=True)
    except Exception as exc:  # noqa: BLE001 - Keras raises many types for bad files
        text = str(exc)
        if "safe_mode" in text or "Lambda" in text:
            raise ModelFileError(
                f"{path} contains a Lambda layer or other code; refusing to run it (Keras safe mode). "
                "Export only models trained with `fmnist train`"
            ) from None
        raise ModelFileError(
            f"{path} is not a readable Keras model ({first_line(exc)}); retrain it with `fmnist train`"
        ) from None
    if not isinstance(model, keras.Model) or len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ModelFileError(f"{path} is not the fmnist model: it needs one input and one output")
    in_shape, out_shape = tuple(model.inputs[0].shape[1:]), tuple(model.outputs[0].shape[1:])
    if in_shape != INPUT_SHAPE or out_shape != (NUM_CLASSES,):
        raise ModelFileError(
            f"{path} is not the fmnist model: input {in_shape}, output {out_shape}; "
            f"expected input {INPUT_SHAPE} and output ({NUM_CLASSES},)"
        )
    _check_weights_finite(path, model)
    return model


def _check_file(path: Path) -> None:
    if not path.exists():
        raise ModelFileError(f"model file {path} does not exist; train one with `fmnist train` or pass --model")
    if not path.is_file():
        raise ModelFileError(f"{path} is not a regular file; pass the model.keras written by `fmnist train`")
    if path.suffix != ".keras":
        raise ModelFileError(f"{path} is not a .keras file; pass the model.keras written by `fmnist train`")
    if not zipfile.is_zipfile(path):  # Keras would say "File not found" about it
        raise ModelFileError(
            f"{path} is not a .keras zip archive (empty, truncated or another format); retrain it with `fmnist train`"
        )
    _check_archive_size(path)


def _check_weights_finite(path: Path, model) -> None:
    """A model with NaN or inf weights is refused at load, before any conversion or evaluation."""
    for layer in model.layers:
        for weight in layer.weights:
            if not np.all(np.isfinite(np.asarray(weight))):
                raise ModelFileError(f"{path} has NaN or inf weights in layer {layer.name} ({weight.name}); "
                                     "it cannot give finite outputs: retrain it")  # fmt: skip


# A trained model.keras holds about 150 KB; its members decompress to under 1 MB. A
# zip bomb is refused before Keras reads it whole.
MAX_UNPACKED_BYTES = 64 * 1024 * 1024


def _check_archive_size(path: Path) -> None:
    with zipfile.ZipFile(path) as archive:
        total = sum(member.file_size for member in archive.infolist())
    if total > MAX_UNPACKED_BYTES:
        raise ModelFileError(f"{path} would unpack to {total:,} bytes, far more than this model's "
                             f"(under {MAX_UNPACKED_BYTES // 2**20} MiB); refusing to read it")  # fmt: skip


def file_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()

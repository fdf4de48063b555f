"""Open any exported artifact by path, detecting its type, and run it on images."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fmnist_keras.errors import ModelFileError


@dataclass(frozen=True)
class Artifact:
    path: Path
    kind: str  # "keras", "saved_model" or "tflite"
    logits: Callable[[np.ndarray], np.ndarray]  # raw 0..255 pixels (N, 28, 28[, 1]) -> (N, 10) float32


def artifact_kind(path: Path) -> str:
    path = Path(path)
    if path.is_dir():
        if (path / "saved_model.pb").is_file():
            return "saved_model"
        raise ModelFileError(f"{path} is a folder without saved_model.pb; pass a .keras, .tflite or SavedModel folder")
    if not path.is_file():
        raise ModelFileError(f"{path} does not exist; pass a .keras file, a .tflite file or a SavedModel folder")
    if path.suffix == ".keras":
        return "keras"
    if path.suffix == ".tflite":
        return "tflite"
    raise ModelFileError(f"{path} is neither .keras, .tflite nor a SavedModel folder; pass one of those")


def open_artifact(path: Path) -> Artifact:
    """Load `path` (type detected from it) into a uniform logits function."""
    from fmnist_keras import runners

    path = Path(path)
    kind = artifact_kind(path)
    if kind == "keras":
        from fmnist_keras.model_file import load_trained_model

        model = load_trained_model(path)
        return Artifact(path, kind, lambda images: runners.keras_logits(model, images))
    if kind == "saved_model":
        try:
            serve = runners.load_serving_signature(path)
        except Exception as exc:  # noqa: BLE001 - TF raises many types for bad folders
            raise ModelFileError(
                f"{path} is not a readable SavedModel with a serving_default signature ({exc})"
            ) from None
        return Artifact(path, kind, lambda images: runners.serving_logits(serve, images))
    model_bytes = path.read_bytes()
    try:
        runners.io_details(model_bytes)
    except Exception as exc:  # noqa: BLE001
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise ModelFileError(f"{path} is not a valid .tflite model ({first})") from None
    return Artifact(path, kind, lambda images: runners.tflite_logits(model_bytes, images))

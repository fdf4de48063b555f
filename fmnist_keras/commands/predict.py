"""`fmnist predict`: classify picture files and .npy arrays with any artifact."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fmnist_keras.contract import CLASS_NAMES
from fmnist_keras.data.pictures import ImageError, Invert, load_image, load_npy
from fmnist_keras.errors import ModelFileError
from fmnist_keras.runtimes.artifact import open_artifact


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def predict_files(artifact_path: Path, paths: list[Path], *, invert: Invert = Invert.auto, top_k: int = 3):
    """Returns (results, errors): one result per image (per array row for .npy), one line per bad file.

    A bad file does not stop the others.
    """

    artifact = open_artifact(artifact_path)
    names, batch, errors = [], [], []
    for path in paths:
        try:
            if Path(path).suffix == ".npy":
                array = load_npy(path)
                names += [f"{path}[{i}]" for i in range(len(array))]
                batch += list(array)
            else:
                batch.append(load_image(path, invert))
                names.append(str(path))
        except ImageError as exc:
            errors.append(str(exc))
    results = []
    if batch:
        logits = artifact.logits(np.stack(batch))
        if not np.all(np.isfinite(logits)):
            raise ModelFileError(
                f"{artifact_path} gives NaN or inf outputs, so it is not a usable model; "
                "retrain it, or use one that `fmnist export` verified"
            )
        probabilities = softmax(logits)
        for name, p in zip(names, probabilities, strict=True):
            order = np.argsort(-p)[:top_k]
            results.append(
                {
                    "input": name,
                    "label": CLASS_NAMES[order[0]],
                    "top": [{"label": CLASS_NAMES[i], "index": int(i), "probability": float(p[i])} for i in order],
                }
            )
    return results, errors

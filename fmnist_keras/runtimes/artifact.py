"""Open any exported artifact by path, detecting its type, and run it on images."""

from __future__ import annotations

# LiteRT is imported inside the functions that need it: importing this module (and `fmnist --help`) stays fast.
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fmnist_keras import contract
from fmnist_keras.errors import ModelFileError, first_line
from fmnist_keras.runtimes import backends as runners
from fmnist_keras.runtimes.keras_file import load_trained_model


@dataclass(frozen=True)
class Artifact:
    path: Path
    kind: str  # "keras", "saved_model" or "tflite"
    logits: Callable[[np.ndarray], np.ndarray]  # raw pixels, as contract.model_batch takes them -> (N, 10) float32


def artifact_kind(path: Path) -> str:
    path = Path(path)
    if path.is_dir():
        if (path / "saved_model.pb").is_file():
            return "saved_model"
        raise ModelFileError(f"{path} is a folder without saved_model.pb; pass a .keras, .tflite or SavedModel folder")
    if not path.exists():
        raise ModelFileError(f"{path} does not exist; pass a .keras file, a .tflite file or a SavedModel folder")
    if not path.is_file():
        raise ModelFileError(f"{path} is not a regular file; pass a .keras file, a .tflite file or a SavedModel folder")
    if path.suffix == ".keras":
        return "keras"
    if path.suffix == ".tflite":
        return "tflite"
    raise ModelFileError(f"{path} is neither .keras, .tflite nor a SavedModel folder; pass one of those")


def _tflite_signature(model_bytes: bytes) -> tuple[list, list]:
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=model_bytes)

    def describe(details):
        return [(list(d.get("shape_signature", d["shape"])), np.dtype(d["dtype"]).name) for d in details]

    return describe(interpreter.get_input_details()), describe(interpreter.get_output_details())


def _quantization_problem(model_bytes: bytes) -> str | None:
    """An integer input or output without a scale cannot be mapped to pixels or logits."""
    for side, detail in runners.io_details(model_bytes).items():
        if detail["dtype"] != "float32" and not detail.get("scale"):
            return f"its {detail['dtype']} {side} has no quantization scale, so fmnist cannot map values to it"
    return None


def _saved_model_signature(path: Path, serve) -> tuple[list, list]:
    inputs = serve.signature.structured_input_signature[1]
    outputs = serve.signature.structured_outputs
    if set(inputs) != {"pixels"} or set(outputs) != {"logits"}:
        raise ModelFileError(
            f"{path} is not an fmnist model: its serving_default signature has inputs {sorted(inputs)} and "
            f"outputs {sorted(outputs)}; expected input 'pixels' and output 'logits'"
        )
    spec, out = inputs["pixels"], outputs["logits"]
    return [(list(spec.shape), spec.dtype.name)], [(list(out.shape), out.dtype.name)]


def _check_contract(path: Path, inputs: list, outputs: list) -> None:
    problem = contract.problem(inputs, outputs)
    if problem:
        raise ModelFileError(f"{path} is not an fmnist model: {problem}; expected {contract.TEXT}")


def open_artifact(path: Path) -> Artifact:
    """Load `path` (type detected from it) into a uniform logits function."""

    path = Path(path)
    kind = artifact_kind(path)
    if kind == "keras":

        model = load_trained_model(path)
        return Artifact(path, kind, lambda images: runners.keras_logits(model, images))
    if kind == "saved_model":
        try:
            serve = runners.load_serving_signature(path)
        except Exception as exc:  # noqa: BLE001 - TF raises many types for bad folders
            raise ModelFileError(
                f"{path} is not a readable SavedModel with a serving_default signature ({first_line(exc)})"
            ) from None
        _check_contract(path, *_saved_model_signature(path, serve))
        return Artifact(path, kind, lambda images: runners.serving_logits(serve, images))
    model_bytes = path.read_bytes()
    try:
        signature = _tflite_signature(model_bytes)
    except Exception as exc:  # noqa: BLE001
        raise ModelFileError(f"{path} is not a valid .tflite model ({first_line(exc)})") from None
    _check_contract(path, *signature)
    problem = _quantization_problem(model_bytes)
    if problem:
        raise ModelFileError(f"{path} is not a usable fmnist model: {problem}; export it with `fmnist export`")
    return Artifact(path, kind, lambda images: runners.tflite_logits(model_bytes, images))

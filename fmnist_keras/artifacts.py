"""Open any exported artifact by path, detecting its type, and run it on images."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fmnist_keras.errors import ModelFileError, first_line


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
    if not path.exists():
        raise ModelFileError(f"{path} does not exist; pass a .keras file, a .tflite file or a SavedModel folder")
    if not path.is_file():
        raise ModelFileError(f"{path} is not a regular file; pass a .keras file, a .tflite file or a SavedModel folder")
    if path.suffix == ".keras":
        return "keras"
    if path.suffix == ".tflite":
        return "tflite"
    raise ModelFileError(f"{path} is neither .keras, .tflite nor a SavedModel folder; pass one of those")


# The contract every artifact must meet: raw pixels in, one logit per class out.
INPUT_DTYPES = ("float32", "int8", "uint8")
CONTRACT = (
    "one input of shape (1 or N, 28, 28, 1) in float32, int8 or uint8 (or 28x28x3 uint8 RGB, the MediaPipe file), "
    "and one output of 10 logits or probabilities"
)


def _shape_text(shape) -> str:
    return "(" + ", ".join("N" if d is None or d < 0 else str(d) for d in shape) + ")"


def _contract_problem(inputs: list[tuple], outputs: list[tuple]) -> str | None:
    """What differs from CONTRACT, given (shape, dtype name) of each input and output; None if nothing."""
    from fmnist_keras.model import INPUT_SHAPE, NUM_CLASSES

    if len(inputs) != 1 or len(outputs) != 1:
        return f"it has {len(inputs)} input(s) and {len(outputs)} output(s)"
    (in_shape, in_dtype), (out_shape, out_dtype) = inputs[0], outputs[0]
    rgb = tuple(in_shape[1:]) == (*INPUT_SHAPE[:2], 3) and in_dtype == "uint8"  # the MediaPipe file
    if len(in_shape) != 4 or not (tuple(in_shape[1:]) == INPUT_SHAPE or rgb) or in_dtype not in INPUT_DTYPES:
        return f"its input is {in_dtype} {_shape_text(in_shape)}"
    if len(out_shape) != 2 or out_shape[-1] != NUM_CLASSES:
        return f"its output is {out_dtype} {_shape_text(out_shape)}"
    return None


def _tflite_signature(model_bytes: bytes) -> tuple[list, list]:
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=model_bytes)

    def describe(details):
        return [(list(d.get("shape_signature", d["shape"])), np.dtype(d["dtype"]).name) for d in details]

    return describe(interpreter.get_input_details()), describe(interpreter.get_output_details())


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
    problem = _contract_problem(inputs, outputs)
    if problem:
        raise ModelFileError(f"{path} is not an fmnist model: {problem}; expected {CONTRACT}")


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
    return Artifact(path, kind, lambda images: runners.tflite_logits(model_bytes, images))

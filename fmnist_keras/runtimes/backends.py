"""Run each artifact type on a batch of images and return float32 logits.

Every runner takes raw pixels as `contract.model_batch` does, so
all artifacts are judged on identical input.
"""

from __future__ import annotations

# TensorFlow, LiteRT are imported inside the functions that need them: importing this module (and
# `fmnist --help`) stays fast.
from pathlib import Path

import numpy as np

from fmnist_keras import contract
from fmnist_keras.compat.tflite_micro import recording_interpreter
from fmnist_keras.runtimes.tflite_file import op_names
from fmnist_keras.system.native_logs import native_stderr_silenced


def keras_logits(model, images: np.ndarray, batch_size: int = 1000) -> np.ndarray:
    return np.asarray(model.predict(contract.model_batch(images), batch_size=batch_size, verbose=0), dtype=np.float32)


def load_serving_signature(path: Path):
    """The `serving_default` function of a SavedModel, holding on to its variables."""
    import tensorflow as tf

    loaded = tf.saved_model.load(str(path))
    signature = loaded.signatures["serving_default"]

    def serve(**inputs):
        return signature(**inputs)

    serve.loaded = loaded  # a signature alone does not keep the restored variables alive
    serve.signature = signature
    return serve


def saved_model_logits(path: Path, images: np.ndarray, batch_size: int = 1000) -> np.ndarray:
    return serving_logits(load_serving_signature(path), images, batch_size)


def serving_logits(serve, images: np.ndarray, batch_size: int = 1000) -> np.ndarray:
    import tensorflow as tf

    x = contract.model_batch(images)
    chunks = [serve(pixels=tf.constant(x[i : i + batch_size]))["logits"].numpy() for i in range(0, len(x), batch_size)]
    return np.concatenate(chunks).astype(np.float32)


def _qparams(detail: dict) -> tuple[float, int]:
    """(scale, zero_point) from LiteRT or TFLM tensor details (both use this key)."""
    q = detail["quantization_parameters"]
    scales, zero_points = np.ravel(q["scales"]), np.ravel(q["zero_points"])
    return (float(scales[0]), int(zero_points[0])) if scales.size else (0.0, 0)


def quantize_input(images: np.ndarray, detail: dict) -> np.ndarray:
    """Float pixels -> the tensor the model expects, through its own quantization parameters.
    A 3-channel (RGB, the MediaPipe file) input gets the grey value in each channel."""
    x = contract.model_batch(images)
    if detail["shape"][-1] == 3:
        x = contract.as_rgb(x)
    dtype = detail["dtype"]
    if np.issubdtype(dtype, np.floating):
        return x.astype(dtype)
    scale, zero_point = _qparams(detail)
    info = np.iinfo(dtype)
    return np.clip(np.round(x / scale + zero_point), info.min, info.max).astype(dtype)


def dequantize_output(values: np.ndarray, detail: dict) -> np.ndarray:
    if np.issubdtype(detail["dtype"], np.floating):
        return values.astype(np.float32)
    scale, zero_point = _qparams(detail)
    return ((values.astype(np.float32) - zero_point) * scale).astype(np.float32)


def litert_interpreter(model_bytes: bytes, num_threads: int = 1):
    """A LiteRT interpreter (XNNPACK on) with its tensors allocated."""
    from ai_edge_litert.interpreter import Interpreter

    with native_stderr_silenced():  # "Created TensorFlow Lite XNNPACK delegate"
        interpreter = Interpreter(model_content=model_bytes, num_threads=num_threads)
        interpreter.allocate_tensors()
    return interpreter


def micro_interpreter(model_bytes: bytes, arena_size: int):
    """A TensorFlow Lite Micro interpreter in an `arena_size`-byte arena, recording its allocations
    (RuntimeError if the model does not fit; TFLM's own explanation on stderr is silenced)."""

    with native_stderr_silenced():
        return recording_interpreter(model_bytes, arena_size)


def tflite_logits(model_bytes: bytes, images: np.ndarray, num_threads: int = 1) -> np.ndarray:
    """Run a batch-1 .tflite image by image on the LiteRT runtime (XNNPACK on)."""
    interpreter = litert_interpreter(model_bytes, num_threads)
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    x = quantize_input(images, inp)
    logits = np.empty((len(x), out["shape"][-1]), dtype=np.float32)
    for i in range(len(x)):
        interpreter.set_tensor(inp["index"], x[i : i + 1])
        interpreter.invoke()
        logits[i] = dequantize_output(interpreter.get_tensor(out["index"])[0], out)
    return as_logits(logits, model_bytes)


# A probability the uint8 output rounds to 0 stands for "below 1/512"; its log must stay finite.
_SMALLEST_PROBABILITY = 1.0 / 512


def as_logits(outputs: np.ndarray, model_bytes: bytes) -> np.ndarray:
    """Logits as they are; a file ending in softmax (the MediaPipe file) gives log-probabilities,
    which have the same argmax and whose softmax gives the probabilities back."""

    if "SOFTMAX" not in op_names(model_bytes):
        return outputs
    return np.log(np.maximum(outputs, _SMALLEST_PROBABILITY)).astype(np.float32)


def micro_logits(model_bytes: bytes, images: np.ndarray, arena_size: int = 256 * 1024) -> np.ndarray:
    """Run a .tflite on the TensorFlow Lite Micro interpreter (as on a microcontroller),
    in a tensor arena of `arena_size` bytes (RuntimeError if the model does not fit)."""
    interpreter = micro_interpreter(model_bytes, arena_size)
    inp, out = interpreter.get_input_details(0), interpreter.get_output_details(0)
    x = quantize_input(images, inp)
    logits = np.empty((len(x), out["shape"][-1]), dtype=np.float32)
    for i in range(len(x)):
        interpreter.set_input(x[i : i + 1], 0)
        interpreter.invoke()
        logits[i] = dequantize_output(interpreter.get_output(0)[0], out)
    return logits


def io_details(model_bytes: bytes) -> dict:
    """Input/output dtype, shape and (scale, zero_point) of a .tflite."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=model_bytes)

    def describe(d: dict) -> dict:
        scale, zero_point = _qparams(d)
        return {
            "dtype": np.dtype(d["dtype"]).name,
            "shape": [int(s) for s in d["shape"]],
            "scale": float(scale),
            "zero_point": int(zero_point),
        }

    return {
        "input": describe(interpreter.get_input_details()[0]),
        "output": describe(interpreter.get_output_details()[0]),
    }

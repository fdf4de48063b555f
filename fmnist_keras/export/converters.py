"""Converters: pure functions from a Keras model to artifact bytes.

Deployable TFLite files get a static batch of 1 (a dynamic batch adds
SHAPE/STRIDED_SLICE/PACK ops) and builtin ops only (Flex ops do not run on
LiteRT mobile or microcontroller runtimes).
"""

from __future__ import annotations

# TensorFlow, Keras are imported inside the functions that need them: importing this module (and
# `fmnist --help`) stays fast.
import tempfile
from enum import Enum
from pathlib import Path

import numpy as np

from fmnist_keras.system.native_logs import native_stderr_silenced


class Quantize(str, Enum):
    none = "none"
    float16 = "float16"
    dynamic = "dynamic"
    int8 = "int8"


class IODType(str, Enum):
    float32 = "float32"
    int8 = "int8"
    uint8 = "uint8"


class Target(str, Enum):
    """Where the files go beyond plain LiteRT: mediapipe adds a MediaPipe Tasks classifier, web
    a page that runs it in the browser (and so the MediaPipe file too)."""

    tflite = "tflite"
    mediapipe = "mediapipe"
    web = "web"


def to_tflite(
    model,
    quantize: Quantize | str = Quantize.none,
    io: IODType | str = IODType.float32,
    representative: np.ndarray | None = None,
    output_name: str = "logits",
) -> bytes:
    """Convert `model` to a batch-1 TFLite flatbuffer and return its bytes.

    `representative` (float32 raw 0..255 training pixels in the model's input shape)
    is required for int8. `io` other than float32 applies to int8 only.
    """

    quantize, io = Quantize(quantize), IODType(io)  # unknown values raise ValueError
    if io is not IODType.float32 and quantize is not Quantize.int8:
        raise ValueError(f"integer input/output ({io.value}) needs --quantize int8, not {quantize.value}")
    # Through a batch-1 SavedModel: this freezes the variables into constants,
    # which from_concrete_functions(..., model) does not.
    with tempfile.TemporaryDirectory(prefix="fmnist-convert-") as tmp:
        export_saved_model(model, Path(tmp), batch_size=1, output_name=output_name)
        if representative is not None:  # any layout of whole images, in the model's input shape
            representative = np.asarray(representative, np.float32).reshape(-1, *model.inputs[0].shape[1:])
        return saved_model_to_tflite(Path(tmp), quantize, io, representative)


def saved_model_to_tflite(
    saved_model: Path,
    quantize: Quantize,
    io: IODType,
    representative: np.ndarray | None = None,
    *,
    ranges_learned: bool = False,
) -> bytes:
    """The converter settings of every .tflite we ship: builtin ops only; int8 with integer I/O.

    int8 calibrates its ranges on `representative` images, unless the model learned
    them (`ranges_learned`: quantization-aware training's fake-quant nodes).
    """
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if quantize is Quantize.float16:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif quantize is Quantize.dynamic:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    elif quantize is Quantize.int8:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        # Post-training: calibrate the ranges and allow integer kernels only. With learned ranges the
        # converter would demand calibration data for that setting (it does not see the QAT nodes
        # through a SavedModel); the gate's op check proves the QAT file full-integer instead.
        if not ranges_learned:
            converter.representative_dataset = _calibration_samples(representative)
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        if io is not IODType.float32:
            converter.inference_input_type = tf.int8 if io is IODType.int8 else tf.uint8
            converter.inference_output_type = converter.inference_input_type

    with native_stderr_silenced():  # the converter prints its settings from C++
        return bytes(converter.convert())


def _calibration_samples(representative: np.ndarray | None):
    if representative is None or len(representative) == 0:
        raise ValueError("int8 quantization needs representative training images")
    samples = np.asarray(representative, dtype=np.float32)
    return lambda: ([sample[np.newaxis]] for sample in samples)  # batch 1, as the file will run


def export_saved_model(model, path: Path, batch_size: int | None = None, output_name: str = "logits") -> None:
    """SavedModel with one `serving_default` signature: pixels (N,28,28,1) float32 -> logits (N,10)
    (the input shape is the model's; the MediaPipe variant takes RGB and returns probabilities)."""
    import keras
    import tensorflow as tf

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(
        name="serving_default",
        fn=lambda pixels: {output_name: model(pixels, training=False)},
        input_signature=[tf.TensorSpec([batch_size, *model.inputs[0].shape[1:]], tf.float32, name="pixels")],
    )
    archive.write_out(str(path), verbose=False)


def tflite_filename(quantize: Quantize, io: IODType, tag: str = "") -> str:
    """model_float32.tflite, model_int8.tflite, model_int8_qat_uint8io.tflite, ..."""
    if quantize is Quantize.none:
        return "model_float32.tflite"
    tag = f"_{tag}" if tag else ""
    suffix = "" if quantize is not Quantize.int8 or io is IODType.int8 else f"_{io.value}io"
    return f"model_{quantize.value}{tag}{suffix}.tflite"

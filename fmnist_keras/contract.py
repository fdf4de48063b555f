"""The input and output contract, in one place: every other module derives from it.

What the model and every artifact take: one 28x28 grayscale image per example, raw pixel
intensities 0..255 (light garment on a dark background, as in Fashion-MNIST; the model
rescales them itself), in float32, int8 or uint8 (a quantized file maps them with its own
scale and zero point). The MediaPipe file takes the same picture as RGB, grey in every
channel. What they give: one value per class, in CLASS_NAMES' order (labels.txt), logits
(or, for the MediaPipe file, probabilities).
"""

from __future__ import annotations

import numpy as np

SIDE = 28  # pixels per image side
IMAGE_SHAPE = (SIDE, SIDE)  # one grey image as the data set stores it
INPUT_SHAPE = (SIDE, SIDE, 1)  # one image as the model takes it (channels-last)
RGB_SHAPE = (SIDE, SIDE, 3)  # one image as the MediaPipe file takes it
PIXEL_MAX = 255  # raw intensities 0..PIXEL_MAX

CLASS_NAMES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
NUM_CLASSES = len(CLASS_NAMES)

# ITU-R BT.601 luma: how an RGB picture becomes the model's grey (Pillow's "L" mode, MediaPipe).
LUMA = (0.299, 0.587, 0.114)

INPUT_DTYPES = ("float32", "int8", "uint8")
OUTPUT_DTYPES = ("float32", "int8", "uint8")  # logits, or quantized logits / probabilities
TEXT = (
    f"one input of shape (1 or N, {SIDE}, {SIDE}, 1) in float32, int8 or uint8 (or {SIDE}x{SIDE}x3 uint8 RGB, "
    f"the MediaPipe file), and one output of {NUM_CLASSES} logits or probabilities"
)


def model_batch(images: np.ndarray) -> np.ndarray:
    """Raw pixels (N, 28, 28) or (N, 28, 28, 1), any numeric dtype -> float32 (N, 28, 28, 1)."""
    return np.asarray(images, dtype=np.float32).reshape(-1, *INPUT_SHAPE)


def grey_images(images: np.ndarray) -> np.ndarray:
    """(N, 28, 28[, 1]) -> (N, 28, 28), dtype kept."""
    return np.asarray(images).reshape(-1, *IMAGE_SHAPE)


def as_rgb(images: np.ndarray) -> np.ndarray:
    """Grey (N, 28, 28[, 1]) -> (N, 28, 28, 3) with the grey value in each channel (its luma is the grey)."""
    return np.repeat(grey_images(images)[..., None], 3, axis=-1)


def _shape_text(shape) -> str:
    return "(" + ", ".join("N" if d is None or d < 0 else str(d) for d in shape) + ")"


def problem(inputs: list[tuple], outputs: list[tuple]) -> str | None:
    """What differs from the contract, given (shape, dtype name) of each input and output; None if nothing."""
    if len(inputs) != 1 or len(outputs) != 1:
        return f"it has {len(inputs)} input(s) and {len(outputs)} output(s)"
    (in_shape, in_dtype), (out_shape, out_dtype) = inputs[0], outputs[0]
    rgb = tuple(in_shape[1:]) == RGB_SHAPE and in_dtype == "uint8"  # the MediaPipe file
    if len(in_shape) != 4 or not (tuple(in_shape[1:]) == INPUT_SHAPE or rgb) or in_dtype not in INPUT_DTYPES:
        return f"its input is {in_dtype} {_shape_text(in_shape)}"
    if in_shape[0] not in (1, None, -1):
        return f"its batch is fixed at {in_shape[0]} (fmnist runs one image at a time: batch 1, or any)"
    if len(out_shape) != 2 or out_shape[-1] != NUM_CLASSES or out_dtype not in OUTPUT_DTYPES:
        return f"its output is {out_dtype} {_shape_text(out_shape)}"
    return None

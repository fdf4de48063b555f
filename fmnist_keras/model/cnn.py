"""The article's CNN ("Convolutional Neural Networks, Explained"), channels-last.

The model takes raw pixel intensities 0..255 and rescales them itself, so
Keras, SavedModel and every TFLite file share one input contract.
"""

from __future__ import annotations

# Keras is imported inside the functions that need it: importing this module (and `fmnist --help`) stays fast.
from dataclasses import dataclass
from types import ModuleType

from fmnist_keras.contract import INPUT_SHAPE, NUM_CLASSES

# Layer names in order, as pinned by tests/test_model.py.
LAYER_NAMES = (
    "pixels",
    "rescale",
    "conv1",
    "bn1",
    "relu1",
    "pool1",
    "conv2",
    "bn2",
    "relu2",
    "pool2",
    "flatten",
    "logits",
)


@dataclass(frozen=True)
class Variant:
    """How one build differs from the published model: the same layers and weights always."""

    batch_size: int | None = None  # a static batch size; None: any
    # False leaves out the 1/255 Rescaling layer (which tfmot cannot quantize); the caller
    # then folds 1/255 into conv1's kernel, keeping the 0..255 contract.
    rescale: bool = True
    # E.g. "mixed_bfloat16": every layer's compute dtype but the logits', which stay float32
    # so the loss and softmax are exact.
    dtype_policy: str | None = None
    # Train BatchNorm with TensorFlow's fused kernel (Keras 3 only; model/fused_batchnorm.py).
    fused_batch_norm: bool = False
    # Each max pooling before its ReLU. The two commute exactly (both keep order; ties and
    # the zero gradient below 0 fall alike), so outputs and gradients are bit-identical, and
    # ReLU and its gradient run on a quarter of the values: about 3 % of a training step.
    # Training uses it; the published model keeps the article's order.
    pool_before_relu: bool = False


def build_model(keras: ModuleType | None = None, variant: Variant = Variant()):
    """Build the network with `keras` (Keras 3 by default; `tf_keras` for tfmot).

    One definition serves both Keras generations, so quantization-aware training fine-tunes
    exactly the layers we train and export.
    """
    if keras is None:
        import keras
    layers = keras.layers
    batch_size, rescale, dtype_policy = variant.batch_size, variant.rescale, variant.dtype_policy
    pool_before_relu = variant.pool_before_relu
    batch_norm = layers.BatchNormalization
    if variant.fused_batch_norm:
        from fmnist_keras.model.fused_batchnorm import FusedBatchNormalization as batch_norm
    # Per-layer policies rather than Keras's global one: nothing else in the process changes.
    dt = {"dtype": dtype_policy} if dtype_policy else {}
    # PyTorch's BatchNorm2d defaults, as in the article's code (Keras's own are 0.99 / 1e-3).
    bn = {"momentum": 0.9, "epsilon": 1e-5}

    def relu_and_pool(x, block: str):
        relu = layers.ReLU(name=f"relu{block}", **dt)
        pool = layers.MaxPooling2D(pool_size=2, strides=2, name=f"pool{block}", **dt)
        return relu(pool(x)) if pool_before_relu else pool(relu(x))

    inputs = keras.Input(shape=INPUT_SHAPE, batch_size=batch_size, name="pixels")
    x = layers.Rescaling(1.0 / 255.0, name="rescale", **dt)(inputs) if rescale else inputs
    # Block 1: 5x5 conv, 16 filters, stride 1, padding 2 ("same") -> 28x28x16 -> 14x14x16
    x = layers.Conv2D(16, 5, strides=1, padding="same", name="conv1", **dt)(x)
    x = batch_norm(**bn, name="bn1", **dt)(x)
    x = relu_and_pool(x, "1")
    # Block 2: 5x5 conv, 32 filters -> 14x14x32 -> 7x7x32
    x = layers.Conv2D(32, 5, strides=1, padding="same", name="conv2", **dt)(x)
    x = batch_norm(**bn, name="bn2", **dt)(x)
    x = relu_and_pool(x, "2")
    x = layers.Flatten(name="flatten", **dt)(x)
    # Logits; softmax lives in the loss (from_logits=True) and in the predictors.
    outputs = layers.Dense(NUM_CLASSES, name="logits", **({"dtype": "float32"} if dtype_policy else {}))(x)
    return keras.Model(inputs, outputs, name="fmnist_cnn")


def build_training_model(dtype_policy: str | None = None):
    """The graph `fmnist train` runs: build_model's layers and weights, with its faster training kernels."""
    return build_model(variant=Variant(dtype_policy=dtype_policy, fused_batch_norm=True, pool_before_relu=True))


def macs_per_layer(model) -> dict[str, int]:
    """Multiply-accumulates per image of each Conv2D and Dense layer, read off the layers themselves."""
    macs = {}
    for layer in model.layers:
        kind = type(layer).__name__
        if kind == "Conv2D":
            _, height, width, filters = layer.output.shape
            kernel_h, kernel_w = layer.kernel_size
            macs[layer.name] = int(height * width * filters * kernel_h * kernel_w * layer.input.shape[-1])
        elif kind == "Dense":
            macs[layer.name] = int(layer.input.shape[-1] * layer.units)
    return macs


def macs_per_image(model=None) -> int:
    """Multiply-accumulates per image of `model` (default: the article's network, 2,838,080)."""
    return sum(macs_per_layer(model if model is not None else build_model()).values())


def describe_layers(model) -> str:
    """The architecture in the article's words, read off the model (what the model card states)."""

    def describe(layer) -> str | None:
        kind = type(layer).__name__
        if kind == "InputLayer":
            return None
        if kind == "Rescaling":
            return f"Rescaling(1/{round(1 / float(layer.scale))})"
        if kind == "Conv2D":
            (kernel_h, kernel_w), (stride, _) = layer.kernel_size, layer.strides
            return f"Conv {kernel_h}x{kernel_w}×{layer.filters} (stride {stride}, {layer.padding})"
        if kind == "MaxPooling2D":
            return f"MaxPool {layer.pool_size[0]}/{layer.strides[0]}"
        if kind == "Dense":
            return f"Dense {layer.units}"
        return {"BatchNormalization": "BatchNorm"}.get(kind, kind)

    return " → ".join(text for text in map(describe, model.layers) if text)

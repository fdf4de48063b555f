import numpy as np

from fmnist_keras.model import LAYER_NAMES, build_model

# Pinned like flax pins CNN_PARAMS: the article's network and nothing else.
CNN_PARAMS = 29_130
LAYERS = [
    ("pixels", "InputLayer", (None, 28, 28, 1)),
    ("rescale", "Rescaling", (None, 28, 28, 1)),
    ("conv1", "Conv2D", (None, 28, 28, 16)),
    ("bn1", "BatchNormalization", (None, 28, 28, 16)),
    ("relu1", "ReLU", (None, 28, 28, 16)),
    ("pool1", "MaxPooling2D", (None, 14, 14, 16)),
    ("conv2", "Conv2D", (None, 14, 14, 32)),
    ("bn2", "BatchNormalization", (None, 14, 14, 32)),
    ("relu2", "ReLU", (None, 14, 14, 32)),
    ("pool2", "MaxPooling2D", (None, 7, 7, 32)),
    ("flatten", "Flatten", (None, 1568)),
    ("logits", "Dense", (None, 10)),
]


def test_layer_sequence_and_shapes_are_the_articles():
    model = build_model()
    seen = [(layer.name, type(layer).__name__, tuple(layer.output.shape)) for layer in model.layers]
    assert seen == LAYERS
    assert tuple(name for name, _, _ in LAYERS) == LAYER_NAMES


def test_parameter_count_is_pinned():
    assert build_model().count_params() == CNN_PARAMS


def test_convolutions_are_5x5_stride_1_same_and_pools_2x2_stride_2():
    model = build_model()
    for name, filters in (("conv1", 16), ("conv2", 32)):
        conv = model.get_layer(name)
        assert (conv.filters, conv.kernel_size, conv.strides, conv.padding) == (filters, (5, 5), (1, 1), "same")
    for name in ("pool1", "pool2"):
        pool = model.get_layer(name)
        assert (pool.pool_size, pool.strides) == ((2, 2), (2, 2))


def test_batchnorm_matches_pytorch_defaults_of_the_article():
    model = build_model()
    for name in ("bn1", "bn2"):
        bn = model.get_layer(name)
        assert (bn.momentum, bn.epsilon) == (0.9, 1e-5)


def test_model_takes_raw_pixels_and_rescales_itself(fmnist):
    """The same logits for raw pixels x as a model without Rescaling, sharing the weights, fed x / 255."""
    model = build_model()
    plain = build_model(rescale=False)
    plain.set_weights(model.get_weights())
    x = fmnist.x_test[:8, :, :, None].astype(np.float32)
    with_rescale = np.asarray(model(x, training=False))
    without = np.asarray(plain(x / 255.0, training=False))
    assert with_rescale.shape == (8, 10)
    # Both compute x * (1/255) or x / 255 in float32: they differ by at most an ulp per pixel,
    # which a random-init network turns into ~1e-6 in its logits on any CPU.
    np.testing.assert_allclose(with_rescale, without, rtol=0, atol=1e-4)


def test_architecture_and_macs_are_read_off_the_layers():
    from fmnist_keras.model import describe_layers, macs_per_image, macs_per_layer

    model = build_model()
    assert describe_layers(model) == (
        "Rescaling(1/255) → Conv 5x5×16 (stride 1, same) → BatchNorm → ReLU → MaxPool 2/2 → "
        "Conv 5x5×32 (stride 1, same) → BatchNorm → ReLU → MaxPool 2/2 → Flatten → Dense 10"
    )
    assert macs_per_layer(model) == {"conv1": 313_600, "conv2": 2_508_800, "logits": 15_680}
    assert macs_per_image() == 2_838_080

import numpy as np

from fmnist_keras.model.cnn import LAYER_NAMES, Variant, build_model, build_training_model

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
    plain = build_model(variant=Variant(rescale=False))
    plain.set_weights(model.get_weights())
    x = fmnist.x_test[:8, :, :, None].astype(np.float32)
    with_rescale = np.asarray(model(x, training=False))
    without = np.asarray(plain(x / 255.0, training=False))
    assert with_rescale.shape == (8, 10)
    # Both compute x * (1/255) or x / 255 in float32: they differ by at most an ulp per pixel,
    # which a random-init network turns into ~1e-6 in its logits on any CPU.
    np.testing.assert_allclose(with_rescale, without, rtol=0, atol=1e-4)


def test_architecture_and_macs_are_read_off_the_layers():
    from fmnist_keras.model.cnn import describe_layers, macs_per_image, macs_per_layer

    model = build_model()
    assert describe_layers(model) == (
        "Rescaling(1/255) → Conv 5x5×16 (stride 1, same) → BatchNorm → ReLU → MaxPool 2/2 → "
        "Conv 5x5×32 (stride 1, same) → BatchNorm → ReLU → MaxPool 2/2 → Flatten → Dense 10"
    )
    assert macs_per_layer(model) == {"conv1": 313_600, "conv2": 2_508_800, "logits": 15_680}
    assert macs_per_image() == 2_838_080


def test_fused_batchnorm_trains_like_keras_batchnorm():
    """Training runs BatchNorm as one fused op (fmnist_keras/fused.py); it must be the same layer maths."""
    import keras
    import tensorflow as tf

    from fmnist_keras.model.fused_batchnorm import FusedBatchNormalization

    x = tf.random.stateless_normal([64, 14, 14, 16], [1, 2]) * 3 + 1
    plain = keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5)
    fused = FusedBatchNormalization(momentum=0.9, epsilon=1e-5)
    for layer in (plain, fused):
        layer.build(x.shape)
        layer.gamma.assign(tf.random.stateless_normal([16], [3, 4]))
        layer.beta.assign(tf.random.stateless_normal([16], [5, 6]))
    results = []
    for layer in (plain, fused):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, training=True)
            loss = tf.reduce_sum(y * tf.sin(y))
        results.append((y, tape.gradient(loss, [x, layer.gamma, layer.beta])))
    (y_plain, grads_plain), (y_fused, grads_fused) = results
    # Float32 sums in another order: differences of a few ulps of values of order 1-10, so
    # 1e-4 holds on any CPU; a wrong formula (variance, epsilon, scale) is off by far more.
    np.testing.assert_allclose(y_fused, y_plain, atol=1e-4)
    for g_fused, g_plain in zip(grads_fused, grads_plain, strict=True):
        np.testing.assert_allclose(g_fused, g_plain, rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(fused.moving_mean, plain.moving_mean, atol=1e-5)
    # The fused op updates the moving variance with the unbiased batch variance (as PyTorch does):
    # n/(n-1) with n = 64*14*14 images*positions, on a 0.1 share of a variance of about 9.
    n = 64 * 14 * 14
    expected = 0.9 * 1.0 + 0.1 * (np.asarray(plain.moving_variance) - 0.9) / 0.1 * n / (n - 1)
    np.testing.assert_allclose(fused.moving_variance, expected, rtol=1e-5)
    # Inference is Keras's own code path: with the same statistics, the very same numbers.
    fused.moving_mean.assign(plain.moving_mean)
    fused.moving_variance.assign(plain.moving_variance)
    np.testing.assert_array_equal(fused(x, training=False), plain(x, training=False))


def test_pooling_before_relu_trains_bit_identically():
    """The training graph swaps each ReLU and its max pooling (model.build_model): the very same numbers."""
    import tensorflow as tf

    article = build_model(variant=Variant(fused_batch_norm=True))
    swapped = build_training_model()
    assert [layer.name for layer in swapped.layers][4:6] == ["pool1", "relu1"]
    swapped.set_weights(article.get_weights())
    pixels = tf.random.stateless_uniform([16, 28, 28, 1], [7, 8], maxval=255.0)
    results = []
    for model in (article, swapped):
        with tf.GradientTape() as tape:
            logits = model(pixels, training=True)
            loss = tf.reduce_sum(logits * tf.sin(logits))
        results.append([logits, *tape.gradient(loss, model.trainable_weights), *model.non_trainable_weights])
    # Max and ReLU round nothing, so they commute exactly: equality, not a tolerance, on any CPU.
    for ours, theirs in zip(*results, strict=True):
        np.testing.assert_array_equal(ours, theirs)


def test_training_model_is_fused_and_the_published_one_plain():
    trained = build_training_model()
    assert [type(layer).__name__ for layer in trained.layers if "bn" in layer.name] == ["FusedBatchNormalization"] * 2
    plain = build_model()
    plain.set_weights(trained.get_weights())  # what training publishes: same variables, Keras's own layers
    pixels = np.random.default_rng(0).uniform(0, 255, (4, 28, 28, 1)).astype(np.float32)
    np.testing.assert_array_equal(plain(pixels, training=False), trained(pixels, training=False))

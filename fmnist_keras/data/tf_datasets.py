"""tf.data input pipelines and the training-time augmentation."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from fmnist_keras.contract import IMAGE_SHAPE, INPUT_SHAPE, NUM_CLASSES


@dataclass(frozen=True)
class Augmentation:
    """What training does to each image: a random horizontal flip (when `flip`) and a
    random shift of up to `shift_pixels` in x and y, the emptied border black."""

    flip: bool
    shift_pixels: int

    @classmethod
    def of(cls, recipe) -> Augmentation | None:
        """The augmentation a recipe (TrainConfig) asks for; None when it changes nothing."""
        if not recipe.augment or not (recipe.flip or recipe.shift_pixels) or not recipe.augmented_epochs:
            return None
        return cls(flip=recipe.flip, shift_pixels=recipe.shift_pixels)

    @staticmethod
    def describe(augmentation: Augmentation | None) -> str:
        """In words, for the model card: e.g. "random ±1 px shifts", or "none"."""
        if augmentation is None:
            return "none"
        parts = ["random flips"] if augmentation.flip else []
        if augmentation.shift_pixels:
            parts.append(f"random ±{augmentation.shift_pixels} px shifts")
        return " and ".join(parts)


def augment_batch(images: tf.Tensor, seed: tf.Tensor, augmentation: Augmentation) -> tf.Tensor:
    """`augmentation` applied to every image of a batch.

    Stateless ops keyed by (seed, batch counter) make the augmentation a pure
    function of the seed: identical on every run, whatever the thread timing.
    Vectorised over the batch because per-image maps cost more than the
    augmentation itself on a 2-core CPU.
    """
    flip_seed, shift_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    batch = tf.shape(images)[0]
    if augmentation.flip:
        flip = tf.random.stateless_uniform([batch, 1, 1, 1], flip_seed) < 0.5
        images = tf.where(flip, tf.reverse(images, axis=[2]), images)
    if not augmentation.shift_pixels:
        return images
    max_shift = augmentation.shift_pixels
    shifts = tf.random.stateless_uniform(
        [batch, 2], shift_seed, minval=-max_shift, maxval=max_shift + 1, dtype=tf.int32
    )
    shifts = tf.cast(shifts, tf.float32)
    ones, zeros = tf.ones([batch, 1]), tf.zeros([batch, 1])
    # Projective transform rows [a0 a1 a2 b0 b1 b2 c0 c1] map output to input pixels.
    transforms = tf.concat([ones, zeros, -shifts[:, :1], zeros, ones, -shifts[:, 1:], zeros, zeros], axis=1)
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=images,
        transforms=transforms,
        output_shape=tf.constant(IMAGE_SHAPE),
        fill_value=0.0,
        interpolation="NEAREST",
        fill_mode="CONSTANT",
    )


def _as_model_input(images: np.ndarray) -> np.ndarray:
    return images.reshape(-1, *INPUT_SHAPE)


@dataclass(frozen=True)
class Batches:
    """How training images are served: batch size, shuffle seed and augmentation."""

    size: int  # images per batch
    seed: int  # seeds the shuffle and the augmentation
    augmentation: Augmentation | None  # None: images as they are
    augmented_batches: int | None = None  # augment only the batches counted below this (None: all)
    first_batch: int = 0  # where the batch count starts (a resumed run continues it)


def training_dataset(images: np.ndarray, labels: np.ndarray, batches: Batches) -> tf.data.Dataset:
    """Endless, reshuffled, optionally augmented batches of 0..255 pixels as float32.

    Endless so one iterator spans all epochs and the batch counter that seeds
    the augmentation never repeats; fit() gets steps_per_epoch().
    """
    batch_size, seed, augmentation = batches.size, batches.seed, batches.augmentation
    augmented_batches, first_batch = batches.augmented_batches, batches.first_batch
    ds = tf.data.Dataset.from_tensor_slices((_as_model_input(images), labels.astype(np.int32)))
    ds = ds.cache().shuffle(len(images), seed=seed, reshuffle_each_iteration=True).batch(batch_size).repeat()
    # One-hot targets: Keras's sparse cross-entropy has no label smoothing.
    ds = ds.map(lambda x, y: (tf.cast(x, tf.float32), tf.one_hot(y, NUM_CLASSES)))
    if augmentation is not None:

        def augment(i, xy):
            def augmented():
                return augment_batch(xy[0], tf.stack([tf.cast(seed, tf.int64), i]), augmentation)

            if augmented_batches is None:
                return augmented(), xy[1]
            return tf.cond(i < augmented_batches, augmented, lambda: xy[0]), xy[1]

        ds = ds.enumerate(start=first_batch).map(augment)
    return ds.prefetch(tf.data.AUTOTUNE)


def steps_per_epoch(num_images: int, batch_size: int) -> int:
    return -(-num_images // batch_size)


def eval_dataset(images: np.ndarray, labels: np.ndarray, batch_size: int = 1000) -> tf.data.Dataset:
    ds = tf.data.Dataset.from_tensor_slices((_as_model_input(images), labels.astype(np.int32)))
    ds = ds.batch(batch_size).map(lambda x, y: (tf.cast(x, tf.float32), tf.one_hot(y, NUM_CLASSES)))
    return ds.cache().prefetch(tf.data.AUTOTUNE)

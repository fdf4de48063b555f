"""The training pipeline's augmentation, on real training images."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from fmnist_keras.config import TrainConfig
from fmnist_keras.data.tf_datasets import Augmentation, Batches, augment_batch, training_dataset
from fmnist_keras.export.report import _augmentation

SHIFTS = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)]


def _shifted(image: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """`image` moved by (dy, dx) pixels, the emptied border black."""
    out = np.zeros_like(image)
    h, w = image.shape[:2]
    out[max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = image[
        max(-dy, 0) : h + min(-dy, 0), max(-dx, 0) : w + min(-dx, 0)
    ]
    return out


def _how_moved(original: np.ndarray, augmented: np.ndarray) -> set[str]:
    """Which of "shift" and "mirrored shift" (by at most 1 px) turn `original` into `augmented`."""
    found = set()
    for name, source in (("shift", original), ("mirrored shift", original[:, ::-1])):
        if any(np.array_equal(_shifted(source, dy, dx), augmented) for dy, dx in SHIFTS):
            found.add(name)
    return found


def _augment(images: np.ndarray, augmentation: Augmentation, seed: int = 0) -> np.ndarray:
    import tensorflow as tf

    batch = tf.constant(images[..., None], tf.float32)
    return augment_batch(batch, tf.constant([seed, 0], tf.int64), augmentation).numpy()[..., 0]


@pytest.fixture(scope="module")
def images(fmnist) -> np.ndarray:
    # Only images that a shift alone cannot mirror, so "flipped or not" is decidable for each.
    picked = [x for x in fmnist.x_train[:200] if "shift" not in _how_moved(x, x[:, ::-1])]
    assert len(picked) >= 64
    return np.stack(picked[:64]).astype(np.float32)


def test_the_default_shifts_every_image_by_at_most_a_pixel_and_never_mirrors_it(images):
    out = _augment(images, Augmentation.of(TrainConfig()))
    assert [_how_moved(x, y) for x, y in zip(images, out, strict=True)] == [{"shift"}] * len(images)
    moved = sum(not np.array_equal(x, y) for x, y in zip(images, out, strict=True))
    assert moved > len(images) // 2  # 8 of the 9 shifts move the image


def test_with_flip_some_images_are_mirrored_and_the_rest_are_not(images):
    out = _augment(images, Augmentation(flip=True, shift_pixels=1))
    moves = [_how_moved(x, y) for x, y in zip(images, out, strict=True)]
    assert all(len(m) == 1 for m in moves)
    mirrored = sum(m == {"mirrored shift"} for m in moves)
    assert 0 < mirrored < len(images)  # a fair coin per image: all or none has odds of 2**-63


def test_augmentation_is_a_function_of_the_seed(images):
    augmentation = Augmentation(flip=True, shift_pixels=2)
    assert np.array_equal(_augment(images, augmentation, seed=3), _augment(images, augmentation, seed=3))
    assert not np.array_equal(_augment(images, augmentation, seed=3), _augment(images, augmentation, seed=4))


def test_a_recipe_that_changes_nothing_gets_no_augmentation_step():
    config = TrainConfig()
    assert Augmentation.of(config) == Augmentation(flip=False, shift_pixels=config.shift_pixels)
    assert Augmentation.of(dataclasses.replace(config, augment=False, flip=True)) is None
    assert Augmentation.of(dataclasses.replace(config, flip=False, shift_pixels=0)) is None
    assert Augmentation.of(dataclasses.replace(config, flip=True, shift_pixels=0)) == Augmentation(True, 0)


def test_a_recipe_recorded_before_flip_and_clean_epochs_were_options_is_read_as_it_ran():
    recorded = {k: v for k, v in TrainConfig().to_dict().items() if k not in ("flip", "clean_epochs")}
    assert TrainConfig.from_dict(recorded).flip is True
    assert TrainConfig.from_dict(recorded).clean_epochs == 0  # every epoch was augmented
    assert _augmentation(TrainConfig.from_dict(recorded).to_dict()) == "random flips and random ±1 px shifts"
    assert _augmentation(TrainConfig().to_dict()) == "random ±1 px shifts, none in the last 3 epochs"
    assert TrainConfig.from_dict(TrainConfig().to_dict()) == TrainConfig()


def test_clean_epochs_leave_the_last_epochs_unaugmented():
    config = TrainConfig(epochs=5, clean_epochs=2)
    assert config.augmented_epochs == 3
    assert TrainConfig(epochs=2, clean_epochs=3).augmented_epochs == 0
    assert Augmentation.of(TrainConfig(epochs=2, clean_epochs=3)) is None  # nothing left to augment
    assert _augmentation(TrainConfig(epochs=2, clean_epochs=3).to_dict()) == "none"


def _batches(images: np.ndarray, augmented_batches: int, first_batch: int = 0, count: int = 3) -> list[np.ndarray]:
    labels = np.zeros(len(images), np.int64)
    batches = Batches(len(images), 0, Augmentation(False, 1), augmented_batches, first_batch)
    ds = training_dataset(images, labels, batches)
    return [x.numpy()[..., 0] for x, _ in ds.take(count)]


def _as_they_are(batch: np.ndarray, images: np.ndarray) -> bool:
    """Whether `batch` holds exactly `images` (in the pipeline's shuffled order)."""
    return sorted(map(bytes, batch.astype(np.uint8))) == sorted(map(bytes, images.astype(np.uint8)))


def test_the_batch_count_decides_which_batches_are_augmented(images):
    # One batch per epoch: batches 0 and 1 augmented, 2 as it is.
    first, second, third = _batches(images, augmented_batches=2)
    assert not _as_they_are(first, images) and not _as_they_are(second, images)
    assert _as_they_are(third, images)
    # A run resumed at batch 2 continues the count: its first batch is a clean one.
    assert all(_as_they_are(b, images) for b in _batches(images, augmented_batches=2, first_batch=2))

"""tools/screen_recipe.py: every lever it screens really reaches training.

Its patched levers (recipes `fmnist train` does not offer) replace library
functions by name; these tests fail if a library change turns one into a no-op.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from fmnist_keras.config import TrainConfig
from fmnist_keras.data import tf_datasets as pipeline
from fmnist_keras.data.tf_datasets import Augmentation
from fmnist_keras.model import fused_batchnorm as fused
from fmnist_keras.training import loop as train

TOOLS = Path(__file__).parents[1] / "tools"


@pytest.fixture
def screen(monkeypatch):
    """The tool's module; whatever a patch replaces is put back after the test."""
    import keras

    monkeypatch.syspath_prepend(str(TOOLS))
    import screen_recipe

    for owner, name in ((keras.optimizers, "Adam"), (fused, "FusedBatchNormalization"), (pipeline, "augment_batch"),
                        (pipeline, "training_dataset"), (train, "compiled_model")):  # fmt: skip
        monkeypatch.setattr(owner, name, getattr(owner, name))
    return screen_recipe


def test_every_lever_is_config_fields_or_a_patch_of_the_tool(screen):
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    assert screen.LEVERS["default"] == screen.Lever(screen.LEVERS["default"].what)
    for name, lever in screen.LEVERS.items():
        assert set(lever.overrides) <= fields, name
        assert lever.overrides or lever.patch or name == "default", name
        assert lever.patch is None or lever.patch.__name__.startswith("patch_"), name


def _compiled(config: TrainConfig):
    plan = train.Plan(SimpleNamespace(replicas=1, task=None), None, None, 64, config.learning_rate, 10, 1)
    return train.compiled_model(config, plan)


def test_optimizer_patches_reach_the_compiled_model(screen):
    assert not _compiled(TrainConfig()).optimizer.use_ema
    screen.patch_ema(0.999, TrainConfig())
    optimizer = _compiled(TrainConfig()).optimizer
    assert optimizer.use_ema and optimizer.ema_momentum == 0.999
    lever = screen.LEVERS["sgd-nesterov"]
    screen.patch_sgd(None, TrainConfig(**lever.overrides))
    optimizer = _compiled(TrainConfig(**lever.overrides)).optimizer
    assert type(optimizer).__name__ == "SGD" and optimizer.nesterov and optimizer.momentum == 0.9


def test_batch_norm_patch_reaches_the_trained_model(screen):
    screen.patch_bn_momentum(0.99, TrainConfig())
    model = _compiled(TrainConfig())
    assert [model.get_layer(n).momentum for n in ("bn1", "bn2")] == [0.99, 0.99]


def _augment(images: np.ndarray) -> np.ndarray:
    import tensorflow as tf

    seed = tf.constant([0, 0], tf.int64)
    return pipeline.augment_batch(tf.constant(images[..., None]), seed, Augmentation.of(TrainConfig())).numpy()


@pytest.fixture(scope="module")
def images(fmnist) -> np.ndarray:
    return fmnist.x_train[:64].astype(np.float32)


def test_random_erasing_blacks_out_a_box_in_about_half_of_the_images(screen, images):
    shifted = _augment(images)
    screen.patch_erasing(None, TrainConfig())
    erased = _augment(images)
    changed = [i for i in range(len(images)) if not np.array_equal(erased[i], shifted[i])]
    assert 16 <= len(changed) <= 48  # a fair coin on 64 images: outside this, p < 1e-4
    for i in changed:
        box = erased[i, ..., 0] != shifted[i, ..., 0]
        assert np.all(erased[i, ..., 0][box] == 0)
        rows, cols = np.nonzero(box.any(axis=1))[0], np.nonzero(box.any(axis=0))[0]
        assert np.ptp(rows) < 10 and np.ptp(cols) < 10  # inside one 10x10 box


def test_half_shifted_leaves_about_half_of_the_images_as_they_were(screen, images):
    shifted = _augment(images)
    screen.patch_shift_fraction(0.5, TrainConfig())
    out = _augment(images)
    kept = [np.array_equal(o[..., 0], x) for o, x in zip(out, images, strict=True)]
    assert all(k or np.array_equal(o, s) for k, o, s in zip(kept, out, shifted, strict=True))
    assert 16 <= sum(kept) <= 56  # half unshifted, plus the 1 in 9 shifts by (0, 0)


def test_levers_joined_by_plus_get_both_overrides_and_patches(screen):
    config = screen.apply_levers("label-smoothing-0+bn-momentum-0.99+no-clean-epochs", 4, {"epochs": 5})
    assert (config.label_smoothing, config.clean_epochs, config.seed, config.epochs) == (0.0, 0, 4, 5)
    model = _compiled(config)
    assert [model.get_layer(n).momentum for n in ("bn1", "bn2")] == [0.99, 0.99]


@pytest.mark.slow
def test_self_distillation_learns_from_its_own_predictions_of_every_image(screen, real_data_dir, tmp_path):
    config = TrainConfig(epochs=2, max_train_images=640, seed=3)
    table = screen.patch_self_distillation(0.8, config)
    metrics = train.train_and_evaluate(config, tmp_path, train.RunContext(data_dir=real_data_dir, verbose=0, log=print))
    probs = table["probs"].numpy()
    assert probs.shape == (640, 10)
    # Every image's row was written by the training pass (zeros otherwise): a probability vector.
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    assert metrics["epochs_run"] == 2

"""Keras 3's private APIs, checked on Keras 3.15 (pinned in pyproject.toml; tests/compat/
fails loudly on a change)."""

from __future__ import annotations

# Keras is imported inside the functions that need it: importing this module (and `fmnist --help`) stays fast.
from collections.abc import Callable

CHECKED_ON = "3.15"


def backup_and_restore(directory: str, before_save: Callable[[], None]):
    """keras.callbacks.BackupAndRestore (keeping its checkpoint, doubled) that calls
    `before_save()` before it starts writing one, through the private `_save_model`."""
    import keras

    class CheckedBackup(keras.callbacks.BackupAndRestore):
        def _save_model(self):
            before_save()
            super()._save_model()

    return CheckedBackup(directory, delete_checkpoint=False, double_checkpoint=True)


def fit_under_multi_worker(model, rank1: Callable[[dict], dict]) -> None:
    """Let Keras 3's fit() run under MultiWorkerMirroredStrategy (keras-team/keras#20585):
    fit() takes the strategy from the enclosing scope (the private `_distribute_strategy`
    cleared), and each step's logs pass through `rank1` (per-instance train/test steps)."""
    model._distribute_strategy = None
    train_step, test_step = model.train_step, model.test_step
    model.train_step = lambda data: rank1(train_step(data))
    model.test_step = lambda data: rank1(test_step(data))

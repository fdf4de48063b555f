"""Quantization-aware training and magnitude pruning with tensorflow-model-optimization.

tfmot only works with Keras 2 (`tf_keras`), so the trained Keras 3 network is
rebuilt with `tf_keras` from the same `build_model`, its weights copied over,
and fine-tuned there. tfmot and tf_keras are imported only inside this module's
functions: importing tfmot sets TF_USE_LEGACY_KERAS=1, which we undo at once
so nothing else in the process (or its children) changes Keras generation.
"""

from __future__ import annotations

# TensorFlow, tfmot, Keras are imported inside the functions that need them: importing this module
# (and `fmnist --help`) stays fast.
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from fmnist_keras.contract import INPUT_SHAPE
from fmnist_keras.export.converters import IODType, Quantize, saved_model_to_tflite
from fmnist_keras.model.cnn import Variant, build_model

if TYPE_CHECKING:  # pipeline imports TensorFlow
    from fmnist_keras.data.tf_datasets import Augmentation

RESCALE = 1.0 / 255.0
WEIGHTED_LAYERS = ("conv1", "conv2", "logits")


@dataclass(frozen=True)
class FinetuneConfig:
    """One fine-tune. No defaults: epochs and learning rate come from ExportConfig, the rest
    from the trained model's recipe (so fine-tuning sees the same data distribution)."""

    epochs: int
    learning_rate: float
    batch_size: int
    label_smoothing: float
    augmentation: Augmentation | None  # as the model was trained
    seed: int
    # Learn the float model's probabilities instead of the labels (pruning and clustering).
    distill: bool


def import_tfmot():
    """Import tfmot and tf_keras, keeping TF_USE_LEGACY_KERAS as it was."""
    previous = os.environ.get("TF_USE_LEGACY_KERAS")
    import tensorflow_model_optimization as tfmot
    import tf_keras

    if previous is None:
        os.environ.pop("TF_USE_LEGACY_KERAS", None)
    else:
        os.environ["TF_USE_LEGACY_KERAS"] = previous
    return tfmot, tf_keras


def to_tf_keras(model, *, fold_rescale: bool):
    """The same network in tf_keras with the Keras 3 model's weights.

    With `fold_rescale`, the Rescaling layer is dropped and 1/255 is folded into
    conv1's kernel (exact: conv(x/255) = conv_{W/255}(x)).
    """
    _, tf_keras = import_tfmot()
    legacy = build_model(tf_keras, Variant(rescale=not fold_rescale))
    weights = [w.copy() for w in model.get_weights()]
    if fold_rescale:
        weights[0] = weights[0] * RESCALE  # conv1 kernel, first in layer order
    legacy.set_weights(weights)
    return legacy


def back_to_keras3(legacy, *, folded: bool):
    """Copy a (stripped) tf_keras network's weights into a fresh Keras 3 model."""
    model = build_model()
    weights = [w.copy() for w in legacy.get_weights()]
    if folded:
        weights[0] = weights[0] / RESCALE
    model.set_weights(weights)
    return model


def _fit(legacy, split, config: FinetuneConfig, callbacks=(), teacher=None):
    """Fine-tune on the training pipeline (same augmentation as training), cosine-decayed learning rate.

    With a `teacher` (the float model), the targets are its probabilities on each augmented
    batch instead of the labels (knowledge distillation): the fine-tune then keeps the
    student's predictions close to the float model's, which is what the export gate measures.
    """
    import tensorflow as tf

    from fmnist_keras.data.tf_datasets import Batches, eval_dataset, steps_per_epoch, training_dataset

    _, tf_keras = import_tfmot()
    tf_keras.utils.set_random_seed(config.seed)
    steps = steps_per_epoch(len(split.x), config.batch_size)
    schedule = tf_keras.optimizers.schedules.CosineDecay(config.learning_rate, decay_steps=config.epochs * steps)
    smoothing = 0.0 if teacher is not None else config.label_smoothing
    legacy.compile(
        optimizer=tf_keras.optimizers.Adam(schedule),
        loss=tf_keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=smoothing),
        metrics=["accuracy"],
    )
    train = training_dataset(split.x, split.y, Batches(config.batch_size, config.seed, config.augmentation))
    if teacher is not None:
        train = train.map(lambda images, _: (images, tf.nn.softmax(teacher(images, training=False))))
    return legacy.fit(
        train,
        steps_per_epoch=steps,
        validation_data=eval_dataset(split.x_val, split.y_val),
        epochs=config.epochs,
        callbacks=list(callbacks),
        verbose=0,
    )


def quantization_aware_finetune(model, split, config: FinetuneConfig, *, pruned: bool = False):
    """Fine-tune with fake quantization; returns the tf_keras QAT model.

    With `pruned`, uses tfmot's pruning-preserving scheme so zeros stay zeros.
    """
    tfmot, _ = import_tfmot()
    legacy = to_tf_keras(model, fold_rescale=True)
    quantize = tfmot.quantization.keras
    if pruned:
        scheme = quantize.collab_opts.Default8BitPrunePreserveQuantizeScheme()
        qat = quantize.quantize_apply(quantize.quantize_annotate_model(legacy), scheme)
    else:
        qat = quantize.quantize_model(legacy)
    _fit(qat, split, config)
    return qat


def prune_finetune(model, sparsity: float, split, config: FinetuneConfig):
    """Magnitude-prune conv and dense kernels to `sparsity` while fine-tuning; return a Keras 3 model."""
    tfmot, tf_keras = import_tfmot()
    sparsity_api = tfmot.sparsity.keras
    legacy = to_tf_keras(model, fold_rescale=False)
    from fmnist_keras.data.tf_datasets import steps_per_epoch

    steps = config.epochs * steps_per_epoch(len(split.x), config.batch_size)
    schedule = sparsity_api.PolynomialDecay(
        initial_sparsity=0.0, final_sparsity=sparsity, begin_step=0, end_step=max(1, int(steps * 0.7)), frequency=10
    )

    def prune_weighted(layer):
        if isinstance(layer, (tf_keras.layers.Conv2D, tf_keras.layers.Dense)):
            return sparsity_api.prune_low_magnitude(layer, pruning_schedule=schedule)
        return layer

    # The wrappers wrap the trained layers themselves, so the trained weights carry over.
    pruning = tf_keras.models.clone_model(legacy, clone_function=prune_weighted)
    teacher = to_tf_keras(model, fold_rescale=False) if config.distill else None
    _fit(pruning, split, config, [sparsity_api.UpdatePruningStep()], teacher)
    return back_to_keras3(sparsity_api.strip_pruning(pruning), folded=False)


def cluster_finetune(model, clusters: int, split, config: FinetuneConfig, teacher_model=None):
    """Weight clustering (tfmot): each conv/dense kernel keeps only `clusters` distinct values.

    Sparsity is preserved (zeros stay zeros), so this follows pruning in tfmot's
    collaborative-optimization pipeline. Few distinct values are what gzip
    exploits: per-channel int8 quantization maps them to few distinct bytes,
    because the scale of a channel is set by its largest centroid, shared by
    most channels (BatchNorm folding scales a channel and its scale alike).
    Returns a Keras 3 model.
    """
    tfmot, tf_keras = import_tfmot()
    clustering = tfmot.clustering.keras
    legacy = to_tf_keras(model, fold_rescale=False)

    def cluster_weighted(layer):
        if isinstance(layer, (tf_keras.layers.Conv2D, tf_keras.layers.Dense)):
            return clustering.cluster_weights(
                layer,
                number_of_clusters=clusters,
                cluster_centroids_init=clustering.CentroidInitialization.KMEANS_PLUS_PLUS,
                preserve_sparsity=True,
            )
        return layer

    clustered = tf_keras.models.clone_model(legacy, clone_function=cluster_weighted)
    teacher = to_tf_keras(teacher_model or model, fold_rescale=False) if config.distill else None
    _fit(clustered, split, config, teacher=teacher)
    return back_to_keras3(clustering.strip_clustering(clustered), folded=False)


def distinct_kernel_values(model) -> dict[str, int]:
    """Number of distinct values in each conv/dense kernel (what clustering limits)."""
    return {name: int(np.unique(kernel).size) for name, kernel in _kernels(model).items()}


def qat_to_tflite(qat_model, io: str = "int8") -> bytes:
    """Convert a tf_keras QAT model to a batch-1, full-integer .tflite (ranges from its training)."""
    import tensorflow as tf


    io = IODType(io)  # an unknown value raises ValueError

    @tf.function(input_signature=[tf.TensorSpec([1, *INPUT_SHAPE], tf.float32, name="pixels")])
    def serve(pixels):
        return {"logits": qat_model(pixels, training=False)}

    with tempfile.TemporaryDirectory(prefix="fmnist-qat-") as tmp:
        tf.saved_model.save(qat_model, tmp, signatures={"serving_default": serve})
        return saved_model_to_tflite(Path(tmp), Quantize.int8, io, ranges_learned=True)


def _kernels(model) -> dict:
    """The conv and dense kernels (what pruning and clustering change), by layer name."""
    return {name: model.get_layer(name).get_weights()[0] for name in WEIGHTED_LAYERS}


def kernel_sparsity(model) -> dict[str, float]:
    """Fraction of exactly-zero weights in each conv/dense kernel."""
    return {name: float(np.mean(kernel == 0)) for name, kernel in _kernels(model).items()}

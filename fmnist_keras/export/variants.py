"""The full-integer models `fmnist export --quantize int8` builds: post-training
quantization always, plus QAT, pruning and/or clustering (tfmot) when asked."""

from __future__ import annotations

# TensorFlow is imported inside the functions that need it: importing this module (and `fmnist --help`) stays fast.
import gzip
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np

from fmnist_keras.config import ExportConfig, TrainConfig
from fmnist_keras.data.idx import Split, training_split
from fmnist_keras.export import tfmot
from fmnist_keras.export.converters import IODType, Quantize, tflite_filename, to_tflite
from fmnist_keras.export.request import ExportInputs, ExportRequest


def gzip_size(data: bytes) -> int:
    """Bytes after gzip -9: what an over-the-air update or a compressed flash image stores."""
    return len(gzip.compress(data, compresslevel=9, mtime=0))


@dataclass
class Int8Build:
    """What every full-integer variant is made from, and the makers themselves. Each maker
    returns (tflite bytes, extra report fields); the pruned model is made once and shared."""

    model: Any  # the trained Keras 3 float model
    io: IODType
    representative: np.ndarray  # calibration images
    split: Split | None  # the trained model's own training split (only fine-tunes need it)
    recipe: TrainConfig  # the trained model's recipe: batch, augmentation, seed
    config: ExportConfig
    log: Callable[[str], None]
    sparsity: float | None = None
    _pruned: Any = field(default=None, repr=False)

    def _finetune(self, epochs: int, learning_rate: float, distill: bool = False):
        from fmnist_keras.data.tf_datasets import Augmentation

        r = self.recipe
        return tfmot.FinetuneConfig(epochs=epochs, learning_rate=learning_rate, distill=distill,
                                    batch_size=r.batch_size, label_smoothing=r.label_smoothing,
                                    augmentation=Augmentation.of(r), seed=r.seed)  # fmt: skip

    def ptq(self) -> tuple[bytes, dict]:
        return to_tflite(self.model, Quantize.int8, self.io, self.representative), {}

    def qat(self) -> tuple[bytes, dict]:

        c = self.config
        self.log(f"Quantization-aware fine-tuning, {c.qat_epochs} epoch(s)")
        qat_model = tfmot.quantization_aware_finetune(
            self.model, self.split, self._finetune(c.qat_epochs, c.qat_learning_rate)
        )
        return tfmot.qat_to_tflite(qat_model, self.io.value), {"finetune_epochs": c.qat_epochs}

    def pruned_model(self):

        if self._pruned is None:
            c = self.config
            self.log(f"Pruning to {self.sparsity:.0%} sparsity, {c.prune_epochs} epoch(s)")
            self._pruned = tfmot.prune_finetune(
                self.model, self.sparsity, self.split, self._finetune(c.prune_epochs, c.prune_learning_rate, c.distill)
            )
        return self._pruned

    def pruned(self, with_qat: bool = False) -> tuple[bytes, dict]:

        c = self.config
        if with_qat:  # pruning-preserving QAT keeps the zeros through fake quantization
            qat_model = tfmot.quantization_aware_finetune(
                self.pruned_model(), self.split, self._finetune(c.qat_epochs, c.qat_learning_rate), pruned=True
            )
            model_bytes = tfmot.qat_to_tflite(qat_model, self.io.value)
        else:
            model_bytes = to_tflite(self.pruned_model(), Quantize.int8, self.io, self.representative)
        sparsity = tfmot.kernel_sparsity(self.pruned_model())
        return model_bytes, {"target_sparsity": self.sparsity, "kernel_sparsity": sparsity}

    def clustered(self, clusters: int) -> tuple[bytes, dict]:
        """Clusters the pruned model when there is one (zeros are kept), else the float model."""

        c = self.config
        self.log(f"Clustering each kernel into {clusters} values, {c.cluster_epochs} epoch(s)")
        base = self.pruned_model() if self.sparsity is not None else self.model
        clustered = tfmot.cluster_finetune(
            base, clusters, self.split, self._finetune(c.cluster_epochs, c.cluster_learning_rate, c.distill),
            teacher_model=self.model,  # the float model, not the pruned one
        )  # fmt: skip
        extra = {
            "clusters": clusters,
            "kernel_sparsity": tfmot.kernel_sparsity(clustered),
            "kernel_distinct_values": tfmot.distinct_kernel_values(clustered),
        }
        if self.sparsity is not None:
            extra["target_sparsity"] = self.sparsity
        return to_tflite(clustered, Quantize.int8, self.io, self.representative), extra


def int8_variants(
    inputs: ExportInputs, request: ExportRequest, log: Callable[[str], None] = print
) -> list[tuple[str, str, Callable[[], tuple[bytes, dict]]]]:
    """(file name, method, maker) for each full-integer model `request` asks for, in the order
    they are made."""
    model, representative, data, training = inputs.model, inputs.representative, inputs.data, inputs.training
    io, config, qat, sparsity, clusters = request.io, request.config, request.qat, request.sparsity, request.clusters
    recipe = TrainConfig.from_dict(training["config"]) if training else TrainConfig()
    needs_split = qat or sparsity is not None or clusters is not None
    split = (
        training_split(data, recipe.validation_split, recipe.seed, config.finetune_max_images) if needs_split else None
    )
    build = Int8Build(model, io, representative, split, recipe, config, log, sparsity)
    name = partial(tflite_filename, Quantize.int8, io)
    variants = [(name(), "ptq", build.ptq)]
    if qat:
        variants.append((name("qat"), "qat", build.qat))
    sparse_tag = f"sparse{round(sparsity * 100)}" if sparsity is not None else ""
    if sparsity is not None:
        method = "qat+pruning" if qat else "ptq+pruning"
        variants.append((name(sparse_tag + ("_qat" if qat else "")), method, partial(build.pruned, with_qat=qat)))
    if clusters is not None:
        method = "ptq+pruning+clustering" if sparsity is not None else "ptq+clustering"
        tag = f"{sparse_tag}_c{clusters}" if sparse_tag else f"c{clusters}"
        variants.append((name(tag), method, partial(build.clustered, clusters)))
    return variants

"""The full-integer models `fmnist export --quantize int8` builds: post-training
quantization always, plus QAT and/or pruning (tfmot) when asked."""

from __future__ import annotations

import gzip

from fmnist_keras.config import ExportConfig, TrainConfig
from fmnist_keras.data import training_split
from fmnist_keras.export.converters import Quantize, tflite_filename, to_tflite


def gzip_size(data: bytes) -> int:
    """Bytes after gzip -9: what an over-the-air update or a compressed flash image stores."""
    return len(gzip.compress(data, compresslevel=9, mtime=0))


def int8_variants(model, io, representative, data, training, config: ExportConfig, qat, sparsity, log, clusters=None):
    """(file name, method, thunk) for each full-integer model asked for; a thunk returns
    (tflite bytes, extra report fields)."""
    variants = [
        (tflite_filename(Quantize.int8, io), "ptq", lambda: (to_tflite(model, Quantize.int8, io, representative), {}))
    ]
    if not qat and sparsity is None and clusters is None:
        return variants
    from fmnist_keras.export import tfmot

    train_cfg = TrainConfig.from_dict(training["config"]) if training else TrainConfig()
    split = training_split(data, train_cfg.validation_split, train_cfg.seed, config.finetune_max_images)

    def finetune(epochs: int, learning_rate: float, distill: bool = False) -> tfmot.FinetuneConfig:
        return tfmot.FinetuneConfig(
            epochs=epochs,
            learning_rate=learning_rate,
            distill=distill,
            batch_size=train_cfg.batch_size,
            label_smoothing=train_cfg.label_smoothing,
            augment=train_cfg.augment,
            shift_pixels=train_cfg.shift_pixels,
            seed=train_cfg.seed,
        )

    if qat:

        def make_qat():
            log(f"Quantization-aware fine-tuning, {config.qat_epochs} epoch(s)")
            qat_model = tfmot.quantization_aware_finetune(
                model, *split, finetune(config.qat_epochs, config.qat_learning_rate)
            )
            return tfmot.qat_to_tflite(qat_model, io.value), {"finetune_epochs": config.qat_epochs}

        variants.append((tflite_filename(Quantize.int8, io, "qat"), "qat", make_qat))
    if sparsity is not None:
        tag = f"sparse{round(sparsity * 100)}"
        pruned = {}

        def pruned_model():
            if "model" not in pruned:
                log(f"Pruning to {sparsity:.0%} sparsity, {config.prune_epochs} epoch(s)")
                pruned["model"] = tfmot.prune_finetune(
                    model, sparsity, *split, finetune(config.prune_epochs, config.prune_learning_rate, config.distill)
                )
            return pruned["model"]

        def make_pruned():
            if qat:  # pruning-preserving QAT keeps the zeros through fake quantization
                qat_model = tfmot.quantization_aware_finetune(
                    pruned_model(), *split, finetune(config.qat_epochs, config.qat_learning_rate), pruned=True
                )
                model_bytes = tfmot.qat_to_tflite(qat_model, io.value)
            else:
                model_bytes = to_tflite(pruned_model(), Quantize.int8, io, representative)
            extra = {"target_sparsity": sparsity, "kernel_sparsity": tfmot.kernel_sparsity(pruned_model())}
            return model_bytes, extra

        name = tflite_filename(Quantize.int8, io, tag + ("_qat" if qat else ""))
        variants.append((name, "qat+pruning" if qat else "ptq+pruning", make_pruned))
    if clusters is not None:
        # Clusters the pruned model when there is one (zeros are kept), else the float model.
        base = pruned_model if sparsity is not None else (lambda: model)

        def make_clustered():
            log(f"Clustering each kernel into {clusters} values, {config.cluster_epochs} epoch(s)")
            clustered = tfmot.cluster_finetune(
                base(),
                clusters,
                *split,
                finetune(config.cluster_epochs, config.cluster_learning_rate, config.distill),
                teacher_model=model,  # the float model, not the pruned one
            )
            extra = {
                "clusters": clusters,
                "kernel_sparsity": tfmot.kernel_sparsity(clustered),
                "kernel_distinct_values": tfmot.distinct_kernel_values(clustered),
            }
            if sparsity is not None:
                extra["target_sparsity"] = sparsity
            return to_tflite(clustered, Quantize.int8, io, representative), extra

        tag = (f"sparse{round(sparsity * 100)}_" if sparsity is not None else "") + f"c{clusters}"
        method = "ptq+pruning+clustering" if sparsity is not None else "ptq+clustering"
        variants.append((tflite_filename(Quantize.int8, io, tag), method, make_clustered))
    return variants

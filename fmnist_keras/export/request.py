"""What `fmnist export` is asked to do: one frozen, checked request (the options against each
other, int8's default io filled in) and the command line that reproduces it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fmnist_keras.config import MAX_CLUSTERS, MAX_SPARSITY, MIN_CLUSTERS, ExportConfig
from fmnist_keras.errors import UsageError
from fmnist_keras.export.converters import IODType, Quantize, Target


@dataclass(frozen=True)
class ExportRequest:
    model_path: Path  # the trained .keras file
    output: Path  # the folder the verified set is published to
    quantize: Quantize = Quantize.none  # the extra .tflite beside the float32 one
    io: IODType | None = None  # int8 file's input/output type (None: int8 for int8, float32 otherwise)
    targets: frozenset[Target] = frozenset({Target.tflite})  # + mediapipe (the MediaPipe file), web (a page)
    config: ExportConfig = ExportConfig()  # calibration, gate and fine-tuning settings
    qat: bool = False  # add a quantization-aware fine-tuned int8 model
    sparsity: float | None = None  # add a magnitude-pruned int8 model
    clusters: int | None = None  # add a weight-clustered int8 model
    data_dir: Path | None = None  # where Fashion-MNIST is (None: the usual places)
    c_array: str | None = None  # the int8 file the C array holds (None: the plain post-training one)

    def __post_init__(self) -> None:
        quantize = Quantize(self.quantize)
        targets = {Target(t) for t in ([self.targets] if isinstance(self.targets, str) else self.targets)}
        targets |= {Target.tflite} | ({Target.mediapipe} if Target.web in targets else set())  # the page runs it
        io = None if self.io is None else IODType(self.io)
        _check_options(self, quantize, io, frozenset(targets))
        io = IODType.float32 if quantize is not Quantize.int8 else io or IODType.int8
        fixed = {"model_path": Path(self.model_path), "output": Path(self.output), "quantize": quantize, "io": io,
                 "targets": frozenset(targets)}  # fmt: skip
        for name, value in fixed.items():
            object.__setattr__(self, name, value)

    def wants(self, target: Target) -> bool:
        return target in self.targets

    def runtimes(self) -> list[tuple[str, str]]:
        """(optional runtime, the option that needs it) for this export (system.optional.RUNTIMES)."""
        needed = [("c++", "--quantize int8")] if self.quantize is Quantize.int8 else []
        if self.wants(Target.mediapipe):
            needed.append(("mediapipe", "--target web" if self.wants(Target.web) else "--target mediapipe"))
        needed += [(name, "--target web") for name in ("tasks-vision", "playwright", "chromium")
                   if self.wants(Target.web)]  # fmt: skip
        return needed

    def _asked_targets(self) -> set[Target]:
        """The targets beyond plain .tflite, less the MediaPipe file when the page implies it."""
        implied = {Target.tflite} | ({Target.mediapipe} if self.wants(Target.web) else set())
        return set(self.targets) - implied

    def command_line(self) -> str:
        """The `fmnist export` command that reproduces this report (every option that shapes it)."""
        config, sparsity, clusters = self.config, self.sparsity, self.clusters
        return (
            f"fmnist export --model {self.model_path} --quantize {self.quantize.value}"
            + (f" --io {self.io.value}" if self.quantize is Quantize.int8 and self.targets == {Target.tflite} else "")
            + "".join(f" --target {t.value}" for t in sorted(self._asked_targets()))
            + f" --output {self.output} --calibration-samples {config.calibration_samples}"
            + f" --max-accuracy-drop {config.max_accuracy_drop:g} --seed {config.seed}"
            + (f" --qat --qat-epochs {config.qat_epochs}" if self.qat else "")
            + (f" --sparsity {sparsity:g} --prune-epochs {config.prune_epochs}" if sparsity is not None else "")
            + (f" --clusters {clusters} --cluster-epochs {config.cluster_epochs}" if clusters is not None else "")
            + (f" --c-array {self.c_array}" if self.c_array else "")
            + (f" --data-dir {self.data_dir}" if self.data_dir else "")
        )


@dataclass(frozen=True)
class ExportInputs:
    """What an export is made from, loaded and checked before any conversion."""

    model: Any  # the trained float Keras 3 model
    data: Any  # data.idx.FashionMNIST
    training: dict | None  # the metrics.json `fmnist train` wrote beside the model (None: absent)
    representative: np.ndarray | None  # int8 calibration images (None without --quantize int8)
    model_sha256: str  # of the .keras file: names the model in the report, metadata and metrics check



def _check_options(request: ExportRequest, quantize: Quantize, io: IODType | None, targets: frozenset) -> None:
    """The one place export options are checked against each other; raises UsageError."""
    fine_tunes = request.qat or request.sparsity is not None or request.clusters is not None
    if io is not None and quantize is not Quantize.int8:
        raise UsageError("--io applies to --quantize int8 only", "--io")
    if fine_tunes and quantize is not Quantize.int8:
        raise UsageError("QAT, pruning and clustering produce full-integer models: add --quantize int8",
                         "--qat/--sparsity/--clusters")  # fmt: skip
    if request.sparsity is not None and not 0 < request.sparsity <= MAX_SPARSITY:
        raise UsageError(f"must be in (0, {MAX_SPARSITY}], got {request.sparsity:g}", "--sparsity")
    if request.clusters is not None and not MIN_CLUSTERS <= request.clusters <= MAX_CLUSTERS:
        raise UsageError(f"must be in [{MIN_CLUSTERS}, {MAX_CLUSTERS}], got {request.clusters}", "--clusters")
    if request.clusters is not None and request.qat:
        raise UsageError("clustering is exported with post-training quantization; drop --qat or --clusters",
                         "--clusters")  # fmt: skip
    if Target.mediapipe in targets and quantize is not Quantize.int8:
        raise UsageError("the MediaPipe file (which the web page runs) is full-integer: use it with --quantize int8",
                         "--target")  # fmt: skip
    if Target.mediapipe in targets and io is not None:
        raise UsageError("the MediaPipe file's input is uint8 RGB and its output uint8 probabilities, "
                         "whatever --io says: drop --io", "--io")  # fmt: skip
    if not str(request.output).strip():
        raise UsageError("is empty; name the folder to publish to (e.g. --output export)", "--output")

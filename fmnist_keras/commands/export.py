"""`export_and_validate`: every artifact is written, then verified on all 10,000
test images, and only published when all of them pass (timm's export+validate pair).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from fmnist_keras import contract
from fmnist_keras import output_files as out
from fmnist_keras.config import ExportConfig, TrainConfig
from fmnist_keras.contract import CLASS_NAMES
from fmnist_keras.data.idx import load_data, stratified_sample
from fmnist_keras.deploy.micro import verify_micro_source
from fmnist_keras.errors import ModelFileError, OutputError, VerificationFailed, first_line
from fmnist_keras.export.converters import (
    IODType,
    Quantize,
    Target,
    check_export_options,
    export_saved_model,
    tflite_filename,
    to_tflite,
)
from fmnist_keras.export.variants import gzip_size, int8_variants
from fmnist_keras.system import cpu, onednn, versions
from fmnist_keras.system.publish import (
    full_disk_reported,
    os_error_text,
    output_folder,
    publish,
    staging_dir,
    write_json,
    write_text,
)

DEFAULT_CONFIG = ExportConfig()
# Below this, the float model itself is poor (the default recipe reaches about 92 %): the gate
# compares artifacts with it, so they pass as faithful copies of a bad model. Say so.
LOW_FLOAT_ACCURACY = 0.80
def read_training_metrics(path: Path) -> dict | None:
    """The metrics.json `fmnist train` wrote beside the model (recipe and accuracy), or None if absent.

    The recipe steers the fine-tunes and the model card, so a damaged file is refused, not guessed at.
    """
    if not path.exists():
        return None
    try:
        metrics = json.loads(path.read_text())
        if not isinstance(metrics, dict):
            raise ValueError(f"expected a JSON object, got {type(metrics).__name__}")
        metrics["config"] = TrainConfig.from_dict(metrics.get("config")).to_dict()
        for key in ("test_accuracy", "num_train_images", "num_val_images"):
            if not isinstance(metrics.get(key), (int, float)) or isinstance(metrics.get(key), bool):
                raise ValueError(f"{key} is missing or not a number")
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        reason = os_error_text(exc) if isinstance(exc, OSError) else first_line(exc)
        raise ModelFileError(
            f"{path} beside the model is not a metrics.json written by `fmnist train` ({reason}); "
            "move it away or retrain"
        ) from None
    return metrics


def calibration_images(x_train: np.ndarray, y_train: np.ndarray, count: int, seed: int) -> np.ndarray:
    """Stratified, reproducible training images (never test images) for int8 calibration."""
    if not 1 <= count <= len(x_train):
        raise OutputError(f"--calibration-samples must be between 1 and {len(x_train):,}, got {count}")
    return contract.model_batch(x_train[stratified_sample(y_train, count, seed)])


def _entry(name, fmt, size, logits, reference, labels, config: ExportConfig | None = None) -> dict:
    """Metrics of a Keras-equivalent artifact; with `config`, gated to reproduce Keras logits.
    Without it (the Keras model itself), the gate checks only that its logits are finite."""
    from fmnist_keras.export.gate import compare, gate_failures

    metrics = compare(logits, reference, labels)
    if config is None:
        failures = gate_failures(metrics, exact=True)
    else:
        failures = gate_failures(
            metrics, exact=True, max_accuracy_drop=config.max_accuracy_drop, float_tolerance=config.float_tolerance
        )
    return {
        "name": name,
        "format": fmt,
        "quantize": "none",
        "method": "none",
        "size_bytes": size,
        **metrics,
        "failures": failures,
    }


def _tflite_entry(name: str, model_bytes: bytes, method: str, logits, reference, labels, config, macs) -> dict:
    """`method`: none (float32), float16, dynamic, ptq, qat, ptq+pruning or qat+pruning.
    A full-integer file also gets its microcontroller budget (flash, measured arena, MACs)."""
    from fmnist_keras.deploy.arena import device_budget
    from fmnist_keras.export.gate import compare, gate_failures
    from fmnist_keras.export.op_checks import deployability_problems
    from fmnist_keras.runtimes.backends import io_details
    from fmnist_keras.runtimes.tflite_file import op_names

    metrics = compare(logits, reference, labels)
    full_integer = method not in ("none", "float16", "dynamic")
    failures = deployability_problems(model_bytes, full_integer=full_integer)
    failures += gate_failures(
        metrics,
        exact=method == "none",
        max_accuracy_drop=config.max_accuracy_drop,
        float_tolerance=config.float_tolerance,
    )
    entry = {
        "name": name,
        "format": "tflite",
        "quantize": "int8" if full_integer else method,
        "method": method,
        "size_bytes": len(model_bytes),
        "gzip_bytes": gzip_size(model_bytes),
        **metrics,
        "ops": op_names(model_bytes),
        "io": io_details(model_bytes),
        "failures": failures,
    }
    if full_integer and not failures:
        entry["device_budget"] = device_budget(model_bytes, macs, entry["ops"])
    return entry


def export_and_validate(
    model_path: Path,
    output: Path,
    *,
    quantize: Quantize = Quantize.none,
    io: IODType | None = None,
    target: Target = Target.tflite,
    config: ExportConfig = DEFAULT_CONFIG,
    data_dir: Path | None = None,
    representative: np.ndarray | None = None,
    qat: bool = False,
    sparsity: float | None = None,
    clusters: int | None = None,
    log=print,
) -> dict:
    """Write SavedModel + float32 TFLite (+ the `quantize` variant) into `output`,
    verified against the float Keras model; raise VerificationFailed and publish
    nothing if any artifact fails. `representative` overrides the calibration set.

    With int8, `qat` adds a quantization-aware fine-tuned model and `sparsity`
    a magnitude-pruned one (pruning-preserving QAT when both are given);
    `clusters` adds a weight-clustered one (of the pruned model, if any).
    """
    from fmnist_keras.runtimes.backends import keras_logits

    started = time.perf_counter()
    request = _Request.checked(model_path, output, quantize, io, target, config, qat, sparsity, clusters, data_dir)
    model, data, training, representative = _inputs(request, representative)
    labels = data.y_test.astype(np.int64)

    log(f"Verifying on {len(labels):,} test images from {data.source}")
    reference = keras_logits(model, data.x_test)
    size = request.model_path.stat().st_size
    artifacts = [_entry(request.model_path.name, "keras", size, reference, reference, labels)]
    warnings = _float_model_warnings(artifacts[0]["accuracy"], log)
    variants = _variants(model, request, representative, data, training, log)

    retry = "nothing was published; free some space, or pass --output elsewhere"
    with output_folder(request.output) as output, full_disk_reported(output, retry), staging_dir(output) as staged:
        staged_artifacts, micro = _stage_and_verify(model, variants, staged, data, reference, labels, config, log)
        artifacts += staged_artifacts
        if request.target is Target.mediapipe:
            artifacts.append(_stage_mediapipe(model, request.model_path, representative, staged, data, reference,
                                              labels, config, log))  # fmt: skip
        report = {
            **_verdict(artifacts, micro, warnings),
            **_provenance(request, data, representative if request.quantize is Quantize.int8 else None),
            **_model_facts(model, reference, labels),
            "artifacts": artifacts,
            "micro": micro,
            "training": training,
            "versions": versions.library_versions(),
            "seconds": round(time.perf_counter() - started, 1),
            "cpu": cpu.cpu_description(),  # what the seconds were measured on
            "onednn": onednn.state(),
        }
        if not report["passed"]:
            raise VerificationFailed(f"verification failed, nothing was published to {output}: "
                                     + "; ".join(report["failures"]), report=report)  # fmt: skip
        _publish_export(staged, output, report, model)
    return report


def _inputs(request: _Request, representative: np.ndarray | None) -> tuple:
    """The model, the data, its training metrics and the calibration images; a bad model or bad
    data fails here, before any folder is made."""
    from fmnist_keras.runtimes.keras_file import load_trained_model

    model = load_trained_model(request.model_path)
    data = load_data(request.data_dir)
    training = read_training_metrics(request.model_path.parent / out.METRICS)
    if request.quantize is Quantize.int8 and representative is None:
        config = request.config
        representative = calibration_images(data.x_train, data.y_train, config.calibration_samples, config.seed)
    return model, data, training, representative


@dataclass(frozen=True)
class _Request:
    """The export options, checked against each other, with int8's default io filled in."""

    model_path: Path
    output: Path
    quantize: Quantize
    io: IODType
    target: Target
    config: ExportConfig
    qat: bool
    sparsity: float | None
    clusters: int | None
    data_dir: Path | None

    @classmethod
    def checked(cls, model_path, output, quantize, io, target, config, qat, sparsity, clusters, data_dir) -> _Request:
        quantize, target = Quantize(quantize), Target(target)
        io = None if io is None else IODType(io)
        check_export_options(quantize, io, target, qat, sparsity, clusters)
        io = IODType.float32 if quantize is not Quantize.int8 else io or IODType.int8
        return cls(Path(model_path), Path(output), quantize, io, target, config, qat, sparsity, clusters, data_dir)

    def command_line(self) -> str:
        """The `fmnist export` command that reproduces this report (every option that shapes it)."""
        config, sparsity, clusters = self.config, self.sparsity, self.clusters
        return (
            f"fmnist export --model {self.model_path} --quantize {self.quantize.value}"
            + (f" --io {self.io.value}" if self.quantize is Quantize.int8 and self.target is Target.tflite else "")
            + (f" --target {self.target.value}" if self.target is not Target.tflite else "")
            + f" --output {self.output} --calibration-samples {config.calibration_samples}"
            + f" --max-accuracy-drop {config.max_accuracy_drop:g} --seed {config.seed}"
            + (f" --qat --qat-epochs {config.qat_epochs}" if self.qat else "")
            + (f" --sparsity {sparsity:g} --prune-epochs {config.prune_epochs}" if sparsity is not None else "")
            + (f" --clusters {clusters} --cluster-epochs {config.cluster_epochs}" if clusters is not None else "")
            + (f" --data-dir {self.data_dir}" if self.data_dir else "")
        )


def _variants(model, request: _Request, representative, data, training, log) -> list:
    """(file name, method, maker) of every .tflite to make: float32 always, then what was asked."""
    quantize = request.quantize
    if quantize in (Quantize.float16, Quantize.dynamic):
        extra = [(tflite_filename(quantize, request.io), quantize.value, lambda: (to_tflite(model, quantize), {}))]
    elif quantize is Quantize.int8:
        extra = int8_variants(model, io=request.io, representative=representative, data=data, training=training,
                              config=request.config, qat=request.qat, sparsity=request.sparsity,
                              clusters=request.clusters, log=log)  # fmt: skip
    else:
        extra = []
    return [("model_float32.tflite", "none", lambda: (to_tflite(model, Quantize.none), {})), *extra]


def _verdict(artifacts: list[dict], micro: dict | None, warnings: list[str]) -> dict:
    """Passed or not, why not, and the files the set will hold."""
    checked = artifacts + ([micro] if micro else [])
    failures = [f"{a['name']}: {failure}" for a in checked for failure in a["failures"]]
    files = sorted({a["name"] for a in artifacts[1:]} | {out.LABELS} | set(out.REPORT_FILES)
                   | ({out.C_HEADER, out.C_SOURCE} if micro else set()))  # fmt: skip
    return {"passed": not failures, "failures": failures, "warnings": warnings, "files": files}


def _stage_mediapipe(model, model_path, representative, staged, data, reference, labels, config, log) -> dict:
    from fmnist_keras import __version__
    from fmnist_keras.deploy.mediapipe import MEDIAPIPE_FILE, RUNTIME, stage_mediapipe
    from fmnist_keras.runtimes.keras_file import file_sha256

    log(f"Converting {MEDIAPIPE_FILE} and verifying it with {RUNTIME}")
    version = f"{__version__}+{file_sha256(model_path)[:12]}"  # names the trained model, too
    return stage_mediapipe(model, representative, staged, data.x_test, reference, labels, config, version)


def _provenance(request: _Request, data, representative) -> dict:
    """Where the report's figures come from: command, model, data, calibration, config."""
    from fmnist_keras.runtimes.keras_file import file_sha256

    config = request.config
    return {
        "command": request.command_line(),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "model": str(request.model_path),
        "model_sha256": file_sha256(request.model_path),
        "test_images": len(data.y_test),
        "data_dir": str(data.source),
        "calibration": (
            {"samples": len(representative), "source": "training images, stratified", "seed": config.seed}
            if representative is not None
            else None
        ),
        "config": config.to_dict(),
    }


def _model_facts(model, reference: np.ndarray, labels: np.ndarray) -> dict:
    """What the model card states, read off the model and its own test-set predictions."""
    from fmnist_keras.metrics import classification_metrics
    from fmnist_keras.model.cnn import describe_layers, macs_per_layer

    return {
        "architecture": describe_layers(model),
        "macs_per_layer": macs_per_layer(model),
        "float_most_confused": classification_metrics(labels, reference.argmax(axis=1))["most_confused"][:3],
    }


def _publish_export(staged: Path, output: Path, report: dict, model) -> None:
    """Labels and the three reports beside the verified files, then the whole set in one transaction."""
    from fmnist_keras.export.report import model_card, report_markdown

    (staged / out.LABELS).write_text("\n".join(CLASS_NAMES) + "\n")
    write_json(staged / out.REPORT_JSON, report)
    write_text(staged / out.REPORT_MD, report_markdown(report))
    write_text(staged / out.MODEL_CARD, model_card(report, model))
    publish(staged, output, report["files"], replaces=out.exported_files(output))


def _float_model_warnings(accuracy: float, log) -> list[str]:
    if accuracy >= LOW_FLOAT_ACCURACY:
        return []
    warning = (
        f"the float model itself reaches only {accuracy:.2%} on the test set (the default recipe reaches "
        "about 92 %); the files are verified as faithful copies of it, not as good models"
    )
    log(f"warning: {warning}")
    return [warning]


# Which int8 file the C array holds when several are made: the most refined one asked for.
C_ARRAY_PREFERENCE = ("ptq", "ptq+pruning", "ptq+clustering", "qat", "ptq+pruning+clustering", "qat+pruning")


def _stage_and_verify(model, variants, staged: Path, data, reference, labels, config, log) -> tuple[list, dict | None]:
    """Write the SavedModel and each .tflite variant into `staged`, each verified on the test set;
    then the C source of the most refined int8 model (C_ARRAY_PREFERENCE), verified on TFLM."""
    from fmnist_keras.model.cnn import macs_per_layer
    from fmnist_keras.runtimes.backends import saved_model_logits, tflite_logits

    export_saved_model(model, staged / out.SAVED_MODEL)
    saved_size = sum(f.stat().st_size for f in (staged / out.SAVED_MODEL).rglob("*") if f.is_file())
    saved_logits = saved_model_logits(staged / out.SAVED_MODEL, data.x_test)
    artifacts = [_entry(out.SAVED_MODEL, "saved_model", saved_size, saved_logits, reference, labels, config)]
    macs = macs_per_layer(model)
    int8 = {}  # method -> (name, bytes, logits, arena)
    for name, method, make in variants:
        log(f"Converting and verifying {name}")
        model_bytes, extra = make()
        (staged / name).write_bytes(model_bytes)
        logits = tflite_logits(model_bytes, data.x_test)
        entry = _tflite_entry(name, model_bytes, method, logits, reference, labels, config, macs)
        artifacts.append({**entry, **extra})
        if "device_budget" in entry:
            int8[method] = (name, model_bytes, logits, entry["device_budget"]["arena_bytes"])
    if not int8:
        return artifacts, None
    name, model_bytes, logits, arena = int8[max(int8, key=C_ARRAY_PREFERENCE.index)]
    return artifacts, verify_micro_source(name, model_bytes, staged, logits, data.x_test, arena_bytes=arena)

"""`export_and_validate`: every artifact is written, then verified on all 10,000
test images, and only published when all of them pass (timm's export+validate pair).
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from fmnist_keras import versions
from fmnist_keras.config import ExportConfig
from fmnist_keras.convert import IODType, Quantize, export_saved_model, tflite_filename, to_tflite
from fmnist_keras.data import CLASS_NAMES, load_data, stratified_sample
from fmnist_keras.errors import OutputError, VerificationFailed
from fmnist_keras.files import ensure_writable_dir, publish, staging_dir, write_json, write_text

DEFAULT_CONFIG = ExportConfig()
MICRO_IMAGES = 1000  # TFLM's reference kernels take ~4 ms an image: 1,000 keeps export under a minute
C_SYMBOL = "g_fmnist_model_int8"


def calibration_images(x_train: np.ndarray, y_train: np.ndarray, count: int, seed: int) -> np.ndarray:
    """Stratified, reproducible training images (never test images) for int8 calibration."""
    if not 1 <= count <= len(x_train):
        raise OutputError(f"--calibration-samples must be between 1 and {len(x_train):,}, got {count}")
    return x_train[stratified_sample(y_train, count, seed)].astype(np.float32).reshape(-1, 28, 28, 1)


def _entry(name, fmt, size, logits, reference, labels, config: ExportConfig | None = None) -> dict:
    """Metrics of a Keras-equivalent artifact; with `config`, gated to reproduce Keras logits."""
    from fmnist_keras.verify import compare, gate_failures

    metrics = compare(logits, reference, labels)
    failures = []
    if config is not None:
        failures = gate_failures(
            metrics, exact=True, max_accuracy_drop=config.max_accuracy_drop, float_tolerance=config.float_tolerance
        )
    return {"name": name, "format": fmt, "quantize": "none", "size_bytes": size, **metrics, "failures": failures}


def _tflite_entry(name: str, model_bytes: bytes, quantize: Quantize, logits, reference, labels, config) -> dict:
    from fmnist_keras.runners import io_details
    from fmnist_keras.tflite_ops import deployability_problems, op_names
    from fmnist_keras.verify import compare, gate_failures

    metrics = compare(logits, reference, labels)
    failures = deployability_problems(model_bytes, full_integer=quantize is Quantize.int8)
    failures += gate_failures(
        metrics,
        exact=quantize is Quantize.none,
        max_accuracy_drop=config.max_accuracy_drop,
        float_tolerance=config.float_tolerance,
    )
    return {
        "name": name,
        "format": "tflite",
        "quantize": quantize.value,
        "size_bytes": len(model_bytes),
        **metrics,
        "ops": op_names(model_bytes),
        "io": io_details(model_bytes),
        "failures": failures,
    }


def _micro_check(model_bytes: bytes, staged: Path, litert_logits: np.ndarray, x_test: np.ndarray) -> dict:
    """Write the TFLM C++ source and prove it: bytes round-trip, it compiles, TFLM agrees with LiteRT."""
    from fmnist_keras.c_array import bytes_from_c_source, compile_check, to_c_source
    from fmnist_keras.runners import micro_logits

    header_name = "model_int8.h"
    header, source = to_c_source(model_bytes, C_SYMBOL, header_name)
    (staged / header_name).write_text(header)
    (staged / "model_int8.cc").write_text(source)
    failures = []
    if bytes_from_c_source(source) != model_bytes:
        failures.append("the C array does not hold the .tflite bytes")
    try:
        compiled = compile_check(header, source, header_name)
    except RuntimeError as exc:
        compiled = "failed"
        failures.append(str(exc))
    micro = micro_logits(model_bytes, x_test[:MICRO_IMAGES]).argmax(axis=1)
    same = int(np.sum(micro == litert_logits[:MICRO_IMAGES].argmax(axis=1)))
    if same != MICRO_IMAGES:
        failures.append(f"TFLite Micro and LiteRT disagree on {MICRO_IMAGES - same} of {MICRO_IMAGES} images")
    return {
        "name": "model_int8.cc",
        "format": "c++ (TensorFlow Lite Micro)",
        "symbol": C_SYMBOL,
        "array_bytes": len(model_bytes),
        "bytes_match_tflite": not any("C array" in f for f in failures),
        "compile": compiled,
        "micro_images": MICRO_IMAGES,
        "micro_agreement_with_litert": same / MICRO_IMAGES,
        "failures": failures,
    }


def export_and_validate(
    model_path: Path,
    output: Path,
    *,
    quantize: Quantize = Quantize.none,
    io: IODType = IODType.int8,
    config: ExportConfig = DEFAULT_CONFIG,
    data_dir: Path | None = None,
    representative: np.ndarray | None = None,
    command: str = "",
    log=print,
) -> dict:
    """Write SavedModel + float32 TFLite (+ the `quantize` variant) into `output`,
    verified against the float Keras model; raise VerificationFailed and publish
    nothing if any artifact fails. `representative` overrides the calibration set.
    """
    from fmnist_keras.model_file import file_sha256, load_trained_model
    from fmnist_keras.report import model_card, report_markdown
    from fmnist_keras.runners import keras_logits, saved_model_logits, tflite_logits

    started = time.perf_counter()
    quantize, io = Quantize(quantize), IODType(io)
    if quantize is not Quantize.int8:
        io = IODType.float32
    output = ensure_writable_dir(Path(output))
    model = load_trained_model(model_path)
    data = load_data(data_dir)
    if quantize is Quantize.int8 and representative is None:
        representative = calibration_images(data.x_train, data.y_train, config.calibration_samples, config.seed)
    labels = data.y_test.astype(np.int64)

    log(f"Verifying on {len(labels):,} test images from {data.source}")
    reference = keras_logits(model, data.x_test)
    keras_entry = _entry(Path(model_path).name, "keras", Path(model_path).stat().st_size, reference, reference, labels)
    artifacts = [keras_entry]
    published = ["saved_model", "model_float32.tflite", "labels.txt"]
    micro = None
    with staging_dir(output) as staged:
        export_saved_model(model, staged / "saved_model")
        saved_size = sum(f.stat().st_size for f in (staged / "saved_model").rglob("*") if f.is_file())
        saved_logits = saved_model_logits(staged / "saved_model", data.x_test)
        artifacts.append(_entry("saved_model", "saved_model", saved_size, saved_logits, reference, labels, config))
        for variant in [Quantize.none] + ([quantize] if quantize is not Quantize.none else []):
            variant_io = io if variant is Quantize.int8 else IODType.float32
            name = tflite_filename(variant, variant_io)
            model_bytes = to_tflite(model, variant, variant_io, representative)
            (staged / name).write_bytes(model_bytes)
            logits = tflite_logits(model_bytes, data.x_test)
            artifacts.append(_tflite_entry(name, model_bytes, variant, logits, reference, labels, config))
            if name not in published:
                published.append(name)
            if variant is Quantize.int8:
                micro = _micro_check(model_bytes, staged, logits, data.x_test)
                published += ["model_int8.h", "model_int8.cc"]
        (staged / "labels.txt").write_text("\n".join(CLASS_NAMES) + "\n")

        metrics_path = Path(model_path).parent / "metrics.json"
        training = json.loads(metrics_path.read_text()) if metrics_path.exists() else None
        failures = [f"{a['name']}: {f}" for a in artifacts + ([micro] if micro else []) for f in a["failures"]]
        report = {
            "passed": not failures,
            "failures": failures,
            "command": command,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "model": str(model_path),
            "model_sha256": file_sha256(model_path),
            "test_images": len(labels),
            "data_dir": str(data.source),
            "calibration": (
                {"samples": len(representative), "source": "training images, stratified", "seed": config.seed}
                if quantize is Quantize.int8
                else None
            ),
            "config": config.to_dict(),
            "artifacts": artifacts,
            "micro": micro,
            "training": training,
            "versions": versions.library_versions(),
            "seconds": round(time.perf_counter() - started, 1),
        }
        if failures:
            raise VerificationFailed(
                f"verification failed, nothing was published to {output}: " + "; ".join(failures), report=report
            )
        write_json(staged / "report.json", report)
        write_text(staged / "report.md", report_markdown(report))
        write_text(staged / "MODEL_CARD.md", model_card(report, model))
        publish(staged, output, published + ["report.md", "MODEL_CARD.md", "report.json"])
    return report

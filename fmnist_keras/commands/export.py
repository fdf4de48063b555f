"""`export_and_validate`: every artifact is written, then verified on all 10,000
test images, and only published when all of them pass (timm's export+validate pair).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from fmnist_keras import __version__, contract
from fmnist_keras import output_files as out
from fmnist_keras.config import TrainConfig
from fmnist_keras.contract import CLASS_NAMES
from fmnist_keras.data.idx import load_data, stratified_sample
from fmnist_keras.deploy.arena import device_budget
from fmnist_keras.deploy.mediapipe import MEDIAPIPE_FILE, RUNTIME, read_metadata, stage_mediapipe
from fmnist_keras.deploy.micro import MicroCandidate, verify_micro_source
from fmnist_keras.deploy.web import BROWSER_IMAGES, stage_web, verify_web
from fmnist_keras.errors import ModelFileError, OutputError, UsageError, VerificationFailed, first_line
from fmnist_keras.export.converters import Quantize, Target, export_saved_model, tflite_filename, to_tflite
from fmnist_keras.export.gate import Reference, gate_failures
from fmnist_keras.export.op_checks import deployability_problems
from fmnist_keras.export.report import model_card, report_markdown
from fmnist_keras.export.request import ExportInputs, ExportRequest
from fmnist_keras.export.variants import gzip_size, int8_variants
from fmnist_keras.metrics import classification_metrics
from fmnist_keras.model.cnn import describe_layers, macs_per_layer
from fmnist_keras.runtimes.backends import io_details, keras_logits, saved_model_logits, tflite_logits
from fmnist_keras.runtimes.keras_file import file_sha256, load_trained_model
from fmnist_keras.runtimes.tflite_file import op_names
from fmnist_keras.system import cpu, onednn, optional, versions
from fmnist_keras.system.publish import (
    check_output_folder,
    full_disk_reported,
    os_error_text,
    output_folder,
    publish,
    staging_dir,
    write_json,
    write_text,
)

# Below this, the float model itself is poor (the default recipe reaches about 92 %): the gate
# compares artifacts with it, so they pass as faithful copies of a bad model. Say so.
LOW_FLOAT_ACCURACY = 0.80
def read_training_metrics(path: Path, model_sha256: str) -> dict | None:
    """The metrics.json `fmnist train` wrote beside the model (recipe and accuracy), or None if absent.

    The recipe steers the fine-tunes and the model card, so a damaged file is refused, not guessed at,
    and so is one written for another model file (its model_sha256 differs).
    """
    if not path.exists() and not path.is_symlink():
        return None
    metrics = _parse_metrics(path)
    recorded = metrics.get("model_sha256")
    if recorded is not None and recorded != model_sha256:
        raise ModelFileError(f"{path} describes another model than the one beside it (model_sha256 "
                             f"{str(recorded)[:12]}…, the model's is {model_sha256[:12]}…); "
                             "move it away or retrain")  # fmt: skip
    return metrics


def _parse_metrics(path: Path) -> dict:
    try:
        metrics = json.loads(path.read_text())
        if not isinstance(metrics, dict):
            raise ValueError(f"expected a JSON object, got {type(metrics).__name__}")
        metrics["config"] = TrainConfig.from_dict(metrics.get("config")).to_dict()
        for key in ("test_accuracy", "num_train_images", "num_val_images"):
            if not isinstance(metrics.get(key), (int, float)) or isinstance(metrics.get(key), bool):
                raise ValueError(f"{key} is missing or not a number")
            if not math.isfinite(metrics[key]):
                raise ValueError(f"{key} is {metrics[key]}, not a finite number")
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


def _entry(name: str, fmt: str, size: int, logits: np.ndarray, ref: Reference) -> dict:
    """Metrics of a Keras-equivalent artifact (SavedModel), gated to reproduce Keras logits."""
    metrics = ref.compare(logits)
    return {"name": name, "format": fmt, "quantize": "none", "method": "none", "size_bytes": size, **metrics,
            "failures": ref.failures(metrics, exact=True)}  # fmt: skip


def _keras_entry(path: Path, ref: Reference) -> dict:
    """The float Keras model's own row: only finite logits are checked (it is the reference)."""

    metrics = ref.compare(ref.logits)
    return {"name": path.name, "format": "keras", "quantize": "none", "method": "none",
            "size_bytes": path.stat().st_size, **metrics, "failures": gate_failures(metrics, exact=True)}  # fmt: skip


def _tflite_entry(name: str, model_bytes: bytes, method: str, logits: np.ndarray, ref: Reference) -> dict:
    """`method`: none (float32), float16, dynamic, ptq, qat, ptq+pruning or qat+pruning."""

    metrics = ref.compare(logits)
    full_integer = method not in ("none", "float16", "dynamic")
    failures = deployability_problems(model_bytes, full_integer=full_integer)
    failures += ref.failures(metrics, exact=method == "none")
    return {"name": name, "format": "tflite", "quantize": "int8" if full_integer else method, "method": method,
            "size_bytes": len(model_bytes), "gzip_bytes": gzip_size(model_bytes), **metrics,
            "ops": op_names(model_bytes), "io": io_details(model_bytes), "failures": failures}  # fmt: skip


def check_runtimes(request: ExportRequest) -> None:
    """Every optional runtime the request needs is installed at the verified version (MissingRuntime)."""
    optional.require(request.runtimes())


RETRY = "nothing was published; free some space, or pass --output elsewhere"


def export_and_validate(request: ExportRequest, *, representative: np.ndarray | None = None, log=print) -> dict:
    """Write SavedModel + float32 TFLite (+ what `request` asks for) into its output folder,
    each verified on all 10,000 test images against the float Keras model; raise
    VerificationFailed and publish nothing if any artifact fails. `representative` overrides
    the calibration set.
    """
    started = time.perf_counter()
    check_runtimes(request)
    check_output_folder(request.output)
    job = _Export.prepare(request, representative, log)
    variants = job.variants()
    c_array_source(request, variants)  # a wrong --c-array is refused before any conversion
    with output_folder(request.output) as output, full_disk_reported(output, RETRY), staging_dir(output) as staged:
        report = {**job.stage_and_verify(staged, variants), "seconds": round(time.perf_counter() - started, 1)}
        if not report["passed"]:
            raise VerificationFailed(f"verification failed, nothing was published to {output}: "
                                     + "; ".join(report["failures"]), report=report)  # fmt: skip
        _publish_export(staged, output, report, job.model)
    return report


@dataclass
class _Export:
    """One export under way: the request, the loaded model and data, and the reference."""

    request: ExportRequest
    inputs: ExportInputs
    ref: Reference
    log: Callable[[str], None]

    @property
    def model(self):
        return self.inputs.model

    @classmethod
    def prepare(cls, request: ExportRequest, representative: np.ndarray | None, log) -> _Export:
        """Load and check everything before any conversion: a bad model or bad data fails here."""

        model = load_trained_model(request.model_path)
        model_sha256 = file_sha256(request.model_path)
        data = load_data(request.data_dir)
        training = read_training_metrics(request.model_path.parent / out.METRICS, model_sha256)
        if request.quantize is Quantize.int8 and representative is None:
            config = request.config
            representative = calibration_images(data.x_train, data.y_train, config.calibration_samples, config.seed)
        labels = data.y_test.astype(np.int64)
        log(f"Verifying on {len(labels):,} test images from {data.source}")
        ref = Reference(data.x_test, labels, keras_logits(model, data.x_test), request.config)
        return cls(request, ExportInputs(model, data, training, representative, model_sha256), ref, log)

    def variants(self) -> list:
        """(file name, method, maker) of every .tflite to make: float32 always, then what was asked."""
        model, request = self.model, self.request
        quantize = request.quantize
        extra = []
        if quantize in (Quantize.float16, Quantize.dynamic):
            extra = [(tflite_filename(quantize, request.io), quantize.value, lambda: (to_tflite(model, quantize), {}))]
        elif quantize is Quantize.int8:
            extra = int8_variants(self.inputs, request, self.log)
        return [("model_float32.tflite", "none", lambda: (to_tflite(model, Quantize.none), {})), *extra]

    def stage_and_verify(self, staged: Path, variants: list) -> dict:
        """Every artifact written into `staged` and verified; the report, passed or not."""
        keras_row = _keras_entry(self.request.model_path, self.ref)
        warnings = _float_model_warnings(keras_row["accuracy"], self.log)
        artifacts, micro = self.stage_files(staged, variants)
        if self.request.wants(Target.mediapipe):
            artifacts.append(self.stage_mediapipe(staged))
        web = self.stage_web(staged) if self.request.wants(Target.web) else None
        return {
            **_verdict([keras_row, *artifacts], [c for c in (micro, web) if c], warnings),
            **_provenance(self.request, self.inputs, self.calibration()),
            **_model_facts(self.model, self.ref),
            "artifacts": [keras_row, *artifacts],
            "micro": micro,
            "web": web,
            "training": self.inputs.training,
            "versions": versions.library_versions(),
            "cpu": cpu.cpu_description(),  # what the seconds were measured on
            "onednn": onednn.state(),
        }

    def stage_files(self, staged: Path, variants: list) -> tuple[list, dict | None]:
        """Write the SavedModel and each .tflite variant into `staged`, each verified on the test
        set; then the C source of the int8 file c_array_source names, verified on TFLM."""

        export_saved_model(self.model, staged / out.SAVED_MODEL)
        saved = staged / out.SAVED_MODEL
        size = sum(f.stat().st_size for f in saved.rglob("*") if f.is_file())
        artifacts = [_entry(out.SAVED_MODEL, "saved_model", size, saved_model_logits(saved, self.ref.images), self.ref)]
        int8 = {}  # method -> MicroCandidate
        for variant in variants:
            entry, candidate = self.stage_tflite(staged, *variant)
            artifacts.append(entry)
            if candidate is not None:
                int8[entry["name"]] = candidate
        chosen = int8.get(c_array_source(self.request, variants))
        if chosen is None:  # it failed its own gate: the report says why; no C array of a failed file
            return artifacts, None
        return artifacts, verify_micro_source(chosen, staged, self.ref.images)

    def stage_tflite(self, staged: Path, name: str, method: str, make) -> tuple[dict, MicroCandidate | None]:
        """One .tflite made, written and verified; with a full-integer file that passed, its
        microcontroller budget (flash, measured arena, MACs) and its C-array candidate."""

        self.log(f"Converting and verifying {name}")
        model_bytes, extra = make()
        (staged / name).write_bytes(model_bytes)
        logits = tflite_logits(model_bytes, self.ref.images)
        entry = {**_tflite_entry(name, model_bytes, method, logits, self.ref), **extra}
        if entry["quantize"] != "int8" or entry["failures"]:
            return entry, None
        entry["device_budget"] = device_budget(model_bytes, macs_per_layer(self.model), entry["ops"])
        return entry, MicroCandidate(name, model_bytes, logits, entry["device_budget"]["arena_bytes"])

    def stage_web(self, staged: Path) -> dict:
        """The page's folder beside the MediaPipe file it runs, checked in Chromium."""
        model_bytes = (staged / out.MEDIAPIPE).read_bytes()
        self.log(f"Building {out.WEB}/ and checking it in Chromium ({BROWSER_IMAGES:,} test images)")
        web = stage_web(model_bytes, read_metadata(model_bytes), staged)
        return verify_web(web, model_bytes, self.ref)

    def calibration(self) -> np.ndarray | None:
        return self.inputs.representative if self.request.quantize is Quantize.int8 else None

    def stage_mediapipe(self, staged: Path) -> dict:

        self.log(f"Converting {MEDIAPIPE_FILE} and verifying it with {RUNTIME}")
        version = f"{__version__}+{self.inputs.model_sha256[:12]}"  # names the trained model, too
        return stage_mediapipe(self.model, self.inputs.representative, staged, self.ref, version)


def _verdict(artifacts: list[dict], targets: list[dict], warnings: list[str]) -> dict:
    """Passed or not, why not, and the files the set will hold. `targets`: the C array's and the
    web page's rows, where they were made."""
    failures = [f"{a['name']}: {failure}" for a in artifacts + targets for failure in a["failures"]]
    made = {a["name"] for a in artifacts[1:]} | {t["name"].split("/")[0] for t in targets}  # web/index.html: web
    files = sorted(made | ({out.C_HEADER} if out.C_SOURCE in made else set()) | {out.LABELS, *out.REPORT_FILES})
    return {"passed": not failures, "failures": failures, "warnings": warnings, "files": files}


def _provenance(request: ExportRequest, inputs: ExportInputs, representative) -> dict:
    """Where the report's figures come from: command, model, data, calibration, config."""
    data = inputs.data
    config = request.config
    return {
        "command": request.command_line(),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "model": str(request.model_path),
        "model_sha256": inputs.model_sha256,
        "test_images": len(data.y_test),
        "data_dir": str(data.source),
        "calibration": (
            {"samples": len(representative), "source": "training images, stratified", "seed": config.seed}
            if representative is not None
            else None
        ),
        "config": config.to_dict(),
    }


def _model_facts(model, ref: Reference) -> dict:
    """What the model card states, read off the model and its own test-set predictions."""

    return {
        "architecture": describe_layers(model),
        "macs_per_layer": macs_per_layer(model),
        "float_most_confused": classification_metrics(ref.labels, ref.predicted)["most_confused"][:3],
    }


def _publish_export(staged: Path, output: Path, report: dict, model) -> None:
    """Labels and the three reports beside the verified files, then the whole set in one transaction."""

    (staged / out.LABELS).write_text("\n".join(CLASS_NAMES) + "\n")
    write_json(staged / out.REPORT_JSON, report)
    write_text(staged / out.REPORT_MD, report_markdown(report))
    write_text(staged / out.MODEL_CARD, model_card(report, model))
    publish(staged, output, report["files"], replaces=out.exported_files(output), whole_folder=True)


def _float_model_warnings(accuracy: float, log) -> list[str]:
    if accuracy >= LOW_FLOAT_ACCURACY:
        return []
    warning = (
        f"the float model itself reaches only {accuracy:.2%} on the test set (the default recipe reaches "
        "about 92 %); the files are verified as faithful copies of it, not as good models"
    )
    log(f"warning: {warning}")
    return [warning]


FLOAT_METHODS = ("none", "float16", "dynamic")


def c_array_source(request: ExportRequest, variants: list) -> str | None:
    """The int8 file whose bytes become the C array: --c-array, else the plain post-training one
    (the file the report's first int8 row describes); None without int8 files."""
    int8_names = [name for name, method, _ in variants if method not in FLOAT_METHODS]
    if request.c_array is not None and request.c_array not in int8_names:
        choices = ", ".join(int8_names) or "none without --quantize int8"
        raise UsageError(f"{request.c_array} is not one of this export's int8 files ({choices})", "--c-array")
    return request.c_array or (int8_names[0] if int8_names else None)

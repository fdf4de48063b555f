"""The one list of the files each stage writes into an output folder.

A training run owns RUN_FILES; an export owns EXPORT_NAMES and EXPORT_PATTERNS. A new export
replaces every file an earlier one owned, and a retrain retires them too, so no model file
outlives the report that describes it.
"""

from __future__ import annotations

from pathlib import Path

# What `fmnist train` publishes; metrics.json last: it marks a finished run.
MODEL = "model.keras"
METRICS = "metrics.json"
RUN_FILES = (MODEL, "training_log.csv", "training_curves.png", METRICS)

# What `fmnist export` publishes.
SAVED_MODEL = "saved_model"
LABELS = "labels.txt"
C_HEADER, C_SOURCE = "model_int8.h", "model_int8.cc"  # the int8 model for TensorFlow Lite Micro
MEDIAPIPE = "model_mediapipe.tflite"
WEB = "web"  # the browser page's folder: index.html, page.js, MediaPipe Tasks for Web, the MediaPipe file
REPORT_JSON, REPORT_MD, MODEL_CARD = "report.json", "report.md", "MODEL_CARD.md"
REPORT_FILES = (REPORT_MD, MODEL_CARD, REPORT_JSON)
EXPORT_NAMES = (SAVED_MODEL, WEB, LABELS, C_HEADER, C_SOURCE, *REPORT_FILES)
EXPORT_PATTERNS = ("model_*.tflite",)  # every .tflite, the MediaPipe file included


def exported_files(folder: Path) -> list[str]:
    """The files of an earlier export in `folder` (what a new export, or a retrain, replaces)."""
    names = [n for n in EXPORT_NAMES if (folder / n).exists()]
    return names + sorted(p.name for pattern in EXPORT_PATTERNS for p in folder.glob(pattern))

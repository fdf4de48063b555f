"""Compare an artifact's logits with the float Keras model's, and apply the gate.

A NaN or inf anywhere fails: every comparison below is written so that a
non-finite number can never pass it, and the metrics stay valid JSON (None
where a number would be NaN).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fmnist_keras.config import ExportConfig
from fmnist_keras.metrics import compare_predictions


@dataclass(frozen=True)
class Reference:
    """What every artifact is held against: the test images, their labels, the float Keras
    model's logits on them, and the gate's settings."""

    images: np.ndarray  # the test images, raw pixels
    labels: np.ndarray  # their classes, int64
    logits: np.ndarray  # the float Keras model's logits on them
    config: ExportConfig  # max_accuracy_drop, float_tolerance

    @property
    def predicted(self) -> np.ndarray:
        """The float Keras model's top class for each test image."""
        return self.logits.argmax(axis=1)

    def compare(self, logits: np.ndarray) -> dict:
        return compare(logits, self.logits, self.labels)

    def failures(self, metrics: dict, *, exact: bool) -> list[str]:
        config = self.config
        return gate_failures(metrics, exact=exact, max_accuracy_drop=config.max_accuracy_drop,
                             float_tolerance=config.float_tolerance)  # fmt: skip


def nonfinite_count(logits: np.ndarray) -> int:
    return int(np.sum(~np.isfinite(logits)))


def compare_classes(predicted: np.ndarray, expected: np.ndarray, labels: np.ndarray) -> dict:
    """Accuracy, drop vs the reference's predictions (percentage points) and top-1 agreement."""
    accuracy = float(np.mean(predicted == labels))
    reference_accuracy = float(np.mean(expected == labels))
    agreement = compare_predictions(predicted, expected, labels)
    return {
        "accuracy": accuracy,
        "accuracy_drop_points": round((reference_accuracy - accuracy) * 100, 4),
        "agreement": agreement["agreement"],
        "disagreements": agreement["disagreements"],
    }


def compare(logits: np.ndarray, reference: np.ndarray, labels: np.ndarray) -> dict:
    """compare_classes of the logits' top classes, plus the max |logit diff| and the non-finite count."""
    nonfinite = nonfinite_count(logits) + nonfinite_count(reference)
    return {
        **compare_classes(logits.argmax(axis=1), reference.argmax(axis=1), labels),
        "max_abs_logit_diff": None if nonfinite else float(np.max(np.abs(logits - reference))),
        "nonfinite_logits": nonfinite_count(logits),
    }


def gate_failures(
    metrics: dict, *, exact: bool, max_accuracy_drop: float | None = None, float_tolerance: float | None = None
) -> list[str]:
    """Why an artifact fails verification; empty when it passes.

    Every artifact must give finite logits. `exact` artifacts (SavedModel,
    float32 TFLite) must reproduce the Keras logits within `float_tolerance`;
    quantized ones may lose at most `max_accuracy_drop` points. Without a
    tolerance (the Keras model itself), only finiteness is checked.
    """
    if metrics["nonfinite_logits"]:
        return [f"{metrics['nonfinite_logits']:,} logits are NaN or inf"]
    diff = metrics["max_abs_logit_diff"]
    if exact and float_tolerance is not None:
        if diff is None:
            return ["cannot be compared with Keras: the Keras model's logits are NaN or inf"]
        if not diff <= float_tolerance:
            return [f"logits differ from Keras by {diff:.2e} > {float_tolerance:.0e}"]
    drop = metrics["accuracy_drop_points"]
    if not exact and max_accuracy_drop is not None and not drop <= max_accuracy_drop:
        return [f"accuracy drops {drop:.2f} points > {max_accuracy_drop:g} allowed"]
    return []

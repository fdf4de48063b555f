"""Compare an artifact's logits with the float Keras model's, and apply the gate."""

from __future__ import annotations

import numpy as np


def compare(logits: np.ndarray, reference: np.ndarray, labels: np.ndarray) -> dict:
    """Accuracy, drop vs the reference (percentage points), top-1 agreement, max |logit diff|."""
    predicted, expected = logits.argmax(axis=1), reference.argmax(axis=1)
    accuracy = float(np.mean(predicted == labels))
    reference_accuracy = float(np.mean(expected == labels))
    return {
        "accuracy": accuracy,
        "accuracy_drop_points": round((reference_accuracy - accuracy) * 100, 4),
        "agreement": float(np.mean(predicted == expected)),
        "disagreements": int(np.sum(predicted != expected)),
        "max_abs_logit_diff": float(np.max(np.abs(logits - reference))),
    }


def gate_failures(metrics: dict, *, exact: bool, max_accuracy_drop: float, float_tolerance: float) -> list[str]:
    """Why an artifact fails verification; empty when it passes.

    `exact` artifacts (SavedModel, float32 TFLite) must reproduce the Keras
    logits; quantized ones may lose at most `max_accuracy_drop` points.
    """
    if exact:
        if metrics["max_abs_logit_diff"] > float_tolerance:
            return [f"logits differ from Keras by {metrics['max_abs_logit_diff']:.2e} > {float_tolerance:.0e}"]
        return []
    if metrics["accuracy_drop_points"] > max_accuracy_drop:
        return [f"accuracy drops {metrics['accuracy_drop_points']:.2f} points > {max_accuracy_drop:g} allowed"]
    return []

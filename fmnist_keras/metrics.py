"""Classification metrics from predictions and logits (numpy only), for training, export and evaluate."""

from __future__ import annotations

import numpy as np

from fmnist_keras.contract import CLASS_NAMES, NUM_CLASSES


def confusion_matrix(labels: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """Rows: true class, columns: predicted class."""
    return np.bincount(labels * NUM_CLASSES + predicted, minlength=NUM_CLASSES**2).reshape(NUM_CLASSES, NUM_CLASSES)


def classification_metrics(labels: np.ndarray, predicted: np.ndarray) -> dict:
    matrix = confusion_matrix(labels, predicted)
    true_positive = np.diag(matrix).astype(float)
    precision = np.divide(true_positive, matrix.sum(axis=0), out=np.zeros(NUM_CLASSES), where=matrix.sum(axis=0) > 0)
    recall = np.divide(true_positive, matrix.sum(axis=1), out=np.zeros(NUM_CLASSES), where=matrix.sum(axis=1) > 0)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros(NUM_CLASSES), where=precision + recall > 0)
    off_diagonal = [(int(matrix[t, p]), t, p) for t in range(NUM_CLASSES) for p in range(NUM_CLASSES) if t != p]
    return {
        "accuracy": float(true_positive.sum() / matrix.sum()),
        "images": int(matrix.sum()),
        "per_class": [
            {
                "class": CLASS_NAMES[c],
                "precision": float(precision[c]),
                "recall": float(recall[c]),
                "f1": float(f1[c]),
                "support": int(matrix[c].sum()),
            }
            for c in range(NUM_CLASSES)
        ],
        "most_confused": [
            {"true": CLASS_NAMES[t], "predicted": CLASS_NAMES[p], "count": n}
            for n, t, p in sorted(off_diagonal, reverse=True)[:5]
        ],
        "confusion_matrix": matrix.tolist(),
    }


def compare_predictions(first: np.ndarray, second: np.ndarray, labels: np.ndarray) -> dict:
    disagree = np.flatnonzero(first != second)
    return {
        "agreement": float(1 - len(disagree) / len(labels)),
        "disagreements": int(len(disagree)),
        "first_right_second_wrong": int(np.sum((first == labels) & (second != labels))),
        "second_right_first_wrong": int(np.sum((second == labels) & (first != labels))),
        "disagreement_indices": disagree[:50].tolist(),
    }


def evaluate_logits(logits: np.ndarray, labels: np.ndarray) -> dict:
    """Accuracy and plain (unsmoothed) cross-entropy of logits against labels."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return {
        "accuracy": float(np.mean(np.argmax(logits, axis=1) == labels)),
        "loss": float(-np.mean(log_probs[np.arange(len(labels)), labels])),
    }

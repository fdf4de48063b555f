"""`fmnist evaluate`: accuracy, per-class metrics, confusions, and pictures of them."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fmnist_keras.contract import CLASS_NAMES, NUM_CLASSES
from fmnist_keras.data.idx import load_data
from fmnist_keras.metrics import classification_metrics, compare_predictions
from fmnist_keras.runtimes.artifact import open_artifact
from fmnist_keras.system.figures import pyplot
from fmnist_keras.system.publish import (
    check_output_file,
    full_disk_reported,
    output_folder,
    publish,
    staging_dir,
    write_json,
)


def metrics_table(metrics: dict) -> str:
    lines = [f"{'class':<12}{'precision':>10}{'recall':>8}{'f1':>8}{'support':>9}"]
    for row in metrics["per_class"]:
        lines.append(
            f"{row['class']:<12}{row['precision']:>10.3f}{row['recall']:>8.3f}{row['f1']:>8.3f}{row['support']:>9,}"
        )
    lines.append(
        "most confused: "
        + "; ".join(f"{c['true']} -> {c['predicted']} ({c['count']})" for c in metrics["most_confused"][:3])
    )
    return "\n".join(lines)


def plot_confusion(matrix: np.ndarray, path: Path, title: str) -> None:
    """Counts and row-normalised rates side by side."""

    plt = pyplot()

    matrix = np.asarray(matrix)
    rates = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    fig, axes = plt.subplots(1, 2, figsize=(13, 5.6), dpi=90)
    for ax, values, label, fmt in ((axes[0], matrix, "counts", "{:d}"), (axes[1], rates, "row-normalised", "{:.2f}")):
        ax.imshow(values, cmap="Blues")
        ax.set_title(f"{title}: {label}")
        ax.set_xticks(range(NUM_CLASSES), CLASS_NAMES, rotation=60, ha="right", fontsize=8)
        ax.set_yticks(range(NUM_CLASSES), CLASS_NAMES, fontsize=8)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        high = values.max() * 0.6
        for t in range(NUM_CLASSES):
            for p in range(NUM_CLASSES):
                value = int(values[t, p]) if fmt == "{:d}" else float(values[t, p])
                ax.text(p, t, fmt.format(value), ha="center", va="center", fontsize=6.5,
                        color="white" if values[t, p] > high else "black")  # fmt: skip
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)


def plot_gallery(images: np.ndarray, labels: np.ndarray, predicted: np.ndarray, path: Path, limit: int = 40) -> None:
    """A grid of misclassified test images with their true and predicted labels."""

    plt = pyplot()

    wrong = np.flatnonzero(labels != predicted)[:limit]
    columns = 8
    rows = max(1, -(-len(wrong) // columns))
    fig, axes = plt.subplots(rows, columns, figsize=(columns * 1.6, rows * 1.9), dpi=90, squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, i in zip(axes.ravel(), wrong, strict=False):
        ax.imshow(images[i], cmap="gray", vmin=0, vmax=255)
        ax.set_title(f"#{i}\ntrue {CLASS_NAMES[labels[i]]}\npred {CLASS_NAMES[predicted[i]]}", fontsize=6.5)
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)


def evaluate_artifacts(paths: list[Path], output: Path, *, data_dir: Path | None = None, gallery: bool = False) -> dict:
    """Evaluate one or two artifacts on the full test set; write JSON and PNGs beside `output`."""

    check_output_file(output)
    artifacts = [open_artifact(p) for p in paths]  # fail on a bad file before the long part
    data = load_data(data_dir)
    labels = data.y_test.astype(np.int64)
    results, predictions = [], []
    for artifact in artifacts:
        predicted = artifact.logits(data.x_test).argmax(axis=1)
        predictions.append(predicted)
        results.append(
            {"artifact": str(artifact.path), "kind": artifact.kind, **classification_metrics(labels, predicted)}
        )
    report = {"test_images": len(labels), "data_dir": str(data.source), "results": results}
    if len(predictions) == 2:
        report["comparison"] = compare_predictions(predictions[0], predictions[1], labels)

    output = Path(output)
    confusion, gallery_name = f"{output.stem}_confusion.png", f"{output.stem}_gallery.png"
    report["confusion_png"] = str(output.with_name(confusion))
    if gallery:
        report["gallery_png"] = str(output.with_name(gallery_name))
    names = [confusion, *([gallery_name] if gallery else []), output.name]
    # The JSON and its pictures are one set: published together, and an old gallery goes with the old JSON.
    retry = "nothing was written; free some space, or pass --output elsewhere"
    with output_folder(output.parent) as folder, full_disk_reported(folder, retry), staging_dir(folder) as staged:
        plot_confusion(np.array(results[0]["confusion_matrix"]), staged / confusion, Path(paths[0]).name)
        if gallery:
            plot_gallery(data.x_test, labels, predictions[0], staged / gallery_name)
        write_json(staged / output.name, report)
        publish(staged, folder, names, replaces=[gallery_name])
    return report

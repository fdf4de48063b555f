"""Training-curve figure (matplotlib, headless)."""

from __future__ import annotations

# matplotlib is imported inside the functions that need it: importing this module (and `fmnist --help`) stays fast.
from pathlib import Path


def pyplot():
    """matplotlib.pyplot on the Agg backend: no display on servers and CI."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_training_curves(rows: list[dict], path: Path) -> None:
    """Loss and accuracy per epoch, train vs validation, from the CSV log rows."""
    from matplotlib.ticker import MaxNLocator

    plt = pyplot()

    epochs = [int(r["epoch"]) + 1 for r in rows]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(9, 3.4), dpi=100)
    for ax, key, title in ((ax_loss, "loss", "Loss (label-smoothed CE)"), (ax_acc, "accuracy", "Accuracy")):
        ax.plot(epochs, [float(r[key]) for r in rows], label="train (augmented)")
        ax.plot(epochs, [float(r["val_" + key]) for r in rows], label="validation")
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)

"""Training curves as PNG files (matplotlib's Agg backend: no screen needed)."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)

from shared.atomic import atomic_path  # noqa: E402


def plot_history(history: list[dict], path: Path, title: str) -> Path:
    """Two panels, cross-entropy and accuracy, train and validation per epoch; the train curve is shaded between
    the 25th and 75th percentiles of its batches, as in the CIFAR lab."""
    epochs = [record["epoch"] for record in history]
    figure, axes = plt.subplots(1, 2, figsize=(11, 4))
    for axis, metric, label in ((axes[0], "loss", "cross-entropy"), (axes[1], "acc", "accuracy")):
        axis.plot(epochs, [record[f"train_{metric}"] for record in history], marker="o", label="train")
        axis.fill_between(epochs, [record[f"train_{metric}_p25"] for record in history],
                          [record[f"train_{metric}_p75"] for record in history], alpha=0.25)
        axis.plot(epochs, [record[f"val_{metric}"] for record in history], marker="o", label="validation")
        axis.set_xlabel("epoch")
        axis.set_title(label)
        axis.grid(alpha=0.3)
        axis.legend(loc="upper right" if metric == "loss" else "lower right")
    axes[1].set_ylim(0, 1)
    figure.suptitle(title)
    figure.tight_layout()
    with atomic_path(path) as part:  # rewritten every epoch: an interruption must not leave half a PNG
        figure.savefig(part, dpi=100, format="png")
    plt.close(figure)
    return Path(path)


def plot_predictions(images: np.ndarray, labels: np.ndarray, predicted: np.ndarray, class_names: tuple[str, ...],
                     path: Path, title: str) -> Path:
    """A 3x3 grid of validation images titled "label / predicted"; a wrong prediction's title is red."""
    figure, axes = plt.subplots(3, 3, figsize=(8, 8.6))
    for index, axis in enumerate(axes.flat):
        axis.axis("off")
        if index >= len(images):
            continue
        axis.imshow(images[index])
        right = labels[index] == predicted[index]
        axis.set_title(f"{class_names[labels[index]]} / {class_names[predicted[index]]}",
                       color="black" if right else "red", fontsize=10)
    figure.suptitle(f"{title}\nlabel / predicted")
    figure.tight_layout()
    with atomic_path(path) as part:
        figure.savefig(part, dpi=90, format="png")
    plt.close(figure)
    return Path(path)

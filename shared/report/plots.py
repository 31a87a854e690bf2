"""Training curves as PNG files (matplotlib's Agg backend: no screen needed).

matplotlib loads when the first figure is drawn, not when a run starts: it takes about half a second, and a run
draws only at its end (``Curves``).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from shared.formats import history as keys
from shared.util.atomic import atomic_path

# Seconds between two drawings of a run's curves while it trains. Drawing them costs more than a small model's epoch
# (0.15-0.7 s); TensorBoard is the live view, and the curves are drawn again whenever a run ends or stops.
CURVES_EVERY = 60.0


def pyplot():
    """``matplotlib.pyplot`` on the Agg backend, imported on first use."""
    import matplotlib

    matplotlib.use("Agg")  # before pyplot is imported: no screen needed
    import matplotlib.pyplot

    return matplotlib.pyplot


class Curves:
    """A run's ``curves.png``: drawn when the run ends or stops (``draw``), and during training at most once every
    ``CURVES_EVERY`` seconds (``after_epoch``)."""

    def __init__(self, path: Path, title: str):
        self.path, self.title = Path(path), title
        self._drawn_at = time.perf_counter()

    def after_epoch(self, history: list[dict]) -> None:
        if time.perf_counter() - self._drawn_at >= CURVES_EVERY:
            self.draw(history)

    def draw(self, history: list[dict]) -> None:
        """The curves of every finished epoch; nothing before the first one."""
        if history:
            plot_history(history, self.path, self.title)
        self._drawn_at = time.perf_counter()


def plot_history(history: list[dict], path: Path, title: str) -> Path:
    """Two panels, cross-entropy and accuracy, train and validation per epoch; the train curve is shaded between
    the 25th and 75th percentiles of its batches, as in the CIFAR lab."""
    plt = pyplot()
    epochs = [record[keys.EPOCH] for record in history]
    figure, axes = plt.subplots(1, 2, figsize=(11, 4))
    for axis, metric, label in ((axes[0], "loss", "cross-entropy"), (axes[1], "acc", "accuracy")):
        axis.plot(epochs, [record[keys.metric("train", metric)] for record in history], marker="o", label="train")
        axis.fill_between(epochs, [record[keys.metric("train", metric, 25)] for record in history],
                          [record[keys.metric("train", metric, 75)] for record in history], alpha=0.25)
        axis.plot(epochs, [record[keys.metric("val", metric)] for record in history], marker="o",
                  label="validation")
        axis.set_xlabel("epoch")
        axis.set_title(label)
        axis.grid(alpha=0.3)
        axis.legend(loc="upper right" if metric == "loss" else "lower right")
    axes[1].set_ylim(0, 1)
    figure.suptitle(title)
    figure.tight_layout()
    with atomic_path(path) as part:  # rewritten during a run: an interruption must not leave half a PNG
        figure.savefig(part, dpi=100, format="png")
    plt.close(figure)
    return Path(path)


def plot_predictions(images: np.ndarray, labels: np.ndarray, predicted: np.ndarray, class_names: tuple[str, ...],
                     path: Path, title: str) -> Path:
    """A 3x3 grid of validation images titled "label / predicted"; a wrong prediction's title is red."""
    plt = pyplot()
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

"""The records a prediction is reported as, the same from ``predict --json``, the ``predict`` API and the server's
``POST /predict``: ``{"image", "top": [{"label", "index", "probability"}, ...]}``, best first."""

from __future__ import annotations

from pathlib import Path
from collections.abc import Sequence

import numpy as np


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def records(files: Sequence[str | Path], logits: np.ndarray, classes: Sequence[str], top: int) -> list[dict]:
    """One record per image: ``{"image", "top": [{"label", "index", "probability"}, ...]}``, best first (ties in
    class order). Sorted for all images at once: a server builds these for every request."""
    probabilities = softmax(np.asarray(logits, np.float64))
    order = np.argsort(-probabilities, axis=1, kind="stable")[:, :top]
    best = np.take_along_axis(probabilities, order, axis=1).tolist()
    return [{"image": str(file), "top": [{"label": classes[index], "index": index, "probability": probability}
                                         for index, probability in zip(indices, values)]}
            for file, indices, values in zip(files, order.tolist(), best)]


def table(predictions: list[dict]) -> str:
    """A person's view: each image and its top labels with their probabilities, one line per image."""
    width = max([len("image")] + [len(record["image"]) for record in predictions])
    lines = [f"{'image':<{width}}  top classes (probability)"]
    for record in predictions:
        labels = "   ".join(f"{entry['label']} {100 * entry['probability']:.1f}%" for entry in record["top"])
        lines.append(f"{record['image']:<{width}}  {labels}")
    return "\n".join(lines)

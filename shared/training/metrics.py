"""Loss and accuracy bookkeeping shared by both backends' training loops."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class BatchMeter:
    """Per-batch loss and accuracy of one epoch; means are weighted by batch size."""

    losses: list[float] = field(default_factory=list)
    accuracies: list[float] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)

    def add(self, loss: float, correct: int, size: int) -> None:
        self.losses.append(float(loss))
        self.accuracies.append(correct / size)
        self.sizes.append(size)

    @property
    def loss(self) -> float:
        return float(np.average(self.losses, weights=self.sizes))

    @property
    def accuracy(self) -> float:
        return float(np.average(self.accuracies, weights=self.sizes))

    def percentiles(self) -> dict[str, float]:
        """25th and 75th percentiles over the epoch's batches, as the CIFAR lab's curves shade them."""
        return {
            "loss_p25": float(np.percentile(self.losses, 25)), "loss_p75": float(np.percentile(self.losses, 75)),
            "acc_p25": float(np.percentile(self.accuracies, 25)), "acc_p75": float(np.percentile(self.accuracies, 75)),
        }


def cross_entropy(logits: np.ndarray, labels: np.ndarray) -> float:
    """Mean softmax cross-entropy of logits (N, K) against class indices, computed stably in float64."""
    logits = logits.astype(np.float64)
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return float(-log_probs[np.arange(len(labels)), labels].mean())


def accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    return float((logits.argmax(axis=1) == labels).mean())


@dataclass(frozen=True)
class ClassScores:
    """Per-class precision, recall, F1 and support (true images), each (K,), as scikit-learn's
    ``precision_recall_fscore_support(average=None, zero_division=0)`` computes them; a score whose denominator is
    zero is 0."""

    precision: np.ndarray
    recall: np.ndarray
    f1: np.ndarray
    support: np.ndarray


def class_scores(labels: np.ndarray, predicted: np.ndarray, classes: int) -> ClassScores:
    true = np.bincount(labels, minlength=classes)
    chosen = np.bincount(predicted, minlength=classes)
    hits = np.bincount(labels[labels == predicted], minlength=classes)

    def divide(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
        return np.divide(numerator, denominator, out=np.zeros(classes), where=denominator > 0)

    # F1 from the counts, 2 TP / (2 TP + FN + FP), as scikit-learn computes it (not from the rounded P and R)
    return ClassScores(divide(hits, chosen), divide(hits, true), divide(2.0 * hits, true + chosen), true)

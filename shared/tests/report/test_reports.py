"""The classification report, held to scikit-learn's, which it replaces at run time."""

import numpy as np
import pytest
from sklearn.metrics import classification_report

from shared.report.reports import classification_reports

CLASSES = ("apple", "orange", "pear", "aquarium_fish")


def _cases():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, 50)
    yield "random", labels, rng.integers(0, 4, 50)
    yield "perfect", labels, labels
    # class 3 never predicted (precision 0/0) and class 2 absent from the labels (recall 0/0): zero_division=0
    yield "missing classes", np.array([0, 1, 1, 3, 3, 0]), np.array([0, 1, 2, 2, 0, 0])


@pytest.mark.parametrize("name, labels, predicted", list(_cases()), ids=[case[0] for case in _cases()])
def test_reports_equal_scikit_learns(name, labels, predicted):
    logits = np.eye(len(CLASSES))[predicted]
    text, data = classification_reports({"validation": (labels, logits)}, CLASSES)
    arguments = dict(y_true=labels, y_pred=predicted, labels=list(range(len(CLASSES))), target_names=list(CLASSES),
                     zero_division=0)
    assert text == f"validation ({len(labels)} images)\n{classification_report(digits=4, **arguments)}"
    assert data == {"validation": classification_report(output_dict=True, **arguments)}


def test_skipped_images_are_listed():
    labels = np.array([0, 1])
    text, data = classification_reports({"train": (labels, np.eye(4)[labels])}, CLASSES, ("a.jpg", "b.png"))
    assert text.endswith("2 unreadable image(s) skipped: a.jpg, b.png\n")
    assert data["skipped_images"] == ["a.jpg", "b.png"]

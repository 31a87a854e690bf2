"""Trained the same way, they train the same: both CLIs, same seed, one epoch on the embedded digits."""

import json
import subprocess
import sys

import numpy as np
import pytest

from parity_tests.pairs import assert_agree
from shared.data import load_digits_rgb, read_split
from shared.onnx_check import onnx_logits
from shared.tolerances import MIN_ARGMAX_AGREEMENT


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One-epoch runs of both CLIs in separate processes, as a user would start them."""
    root = tmp_path_factory.mktemp("runs")
    for framework in ("torch", "tf"):
        result = subprocess.run([sys.executable, "-m", f"cnnlab_{framework}.train", "--epochs", "1", "--seed", "0",
                                 "--out", str(root / framework)], capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, f"cnnlab_{framework}.train failed:\n{result.stderr[-3000:]}"
    return root / "torch", root / "tf"


def test_both_runs_saw_the_same_split(runs):
    torch_split, tf_split = (read_split(run / "split.json") for run in runs)
    assert np.array_equal(torch_split.val, tf_split.val) and np.array_equal(torch_split.train, tf_split.train)


def test_exported_models_agree_on_the_validation_set(runs):
    torch_run, tf_run = runs
    val_images = load_digits_rgb().images[read_split(torch_run / "split.json").val].astype(np.float32)
    torch_logits = onnx_logits(torch_run / "model.onnx", val_images)
    tf_logits = onnx_logits(tf_run / "model.onnx", val_images)
    assert_agree(tf_logits, torch_logits, "trained_one_epoch", "one-epoch ONNX logits, tf vs torch")
    agreement = float((tf_logits.argmax(1) == torch_logits.argmax(1)).mean())
    assert agreement >= MIN_ARGMAX_AGREEMENT, f"predicted classes agree on {agreement:.2%} of validation images"


def test_training_curves_agree(runs):
    torch_history, tf_history = (json.loads((run / "metrics.json").read_text())["history"] for run in runs)
    keys = ("train_loss", "train_acc", "val_loss", "val_acc")
    assert_agree(np.array([tf_history[0][key] for key in keys]), np.array([torch_history[0][key] for key in keys]),
                 "trained_one_epoch", f"one-epoch {', '.join(keys)}, tf vs torch")

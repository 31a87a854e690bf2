"""Trained the same way, they train the same: both CLIs, same seed, on the embedded digits, in every precision.

32-true and the mixed modes train one epoch; their bound is measured, not a rounding bound
(shared/formats/tolerances.py). 64-true trains the full default run: in float64 the frameworks compute the same thing,
so the float32 exports agree to float32 rounding."""

import json
import subprocess
import sys

import numpy as np
import pytest

from parity_tests.pairs import assert_agree
from shared.data.dataset import Split, load_digits_rgb
from shared.formats import rundir
from shared.formats.onnx_check import onnx_logits
from shared.training.precision import PRECISIONS
from tests.support.tensorboard import read_scalars
from shared.formats.tolerances import MIN_ARGMAX_AGREEMENT

# The slow half of the parity suite: it trains models (make test ARGS="parity_tests -m 'not training'" skips it)
pytestmark = pytest.mark.training

# 64-true runs the default run whole (10 epochs); the others one epoch.
EPOCHS = {"32-true": 1, "64-true": 10, "bf16-mixed": 1, "16-mixed": 1}


@pytest.fixture(scope="module", params=sorted(PRECISIONS))
def runs(request, tmp_path_factory):
    """Runs of both CLIs in separate processes, as a user would start them: (precision, torch run, tf run)."""
    precision = request.param
    root = tmp_path_factory.mktemp(f"runs-{precision}")
    for framework in ("torch", "tf"):
        result = subprocess.run([sys.executable, "-m", f"cnnlab_{framework}.train", "--epochs",
                                 str(EPOCHS[precision]), "--seed", "0", "--precision", precision,
                                 "--out", str(root / framework)], capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, f"cnnlab_{framework}.train failed:\n{result.stderr[-3000:]}"
    return precision, root / "torch", root / "tf"


def test_both_runs_saw_the_same_split(runs):
    _, *directories = runs
    torch_split, tf_split = (Split.from_json(rundir.read_split(run)) for run in directories)
    assert np.array_equal(torch_split.val, tf_split.val) and np.array_equal(torch_split.train, tf_split.train)


def test_exported_models_agree_on_the_validation_set(runs):
    precision, torch_run, tf_run = runs
    val_images = load_digits_rgb().images[Split.from_json(rundir.read_split(torch_run)).val].astype(np.float32)
    torch_logits = onnx_logits(torch_run / "model.onnx", val_images)
    tf_logits = onnx_logits(tf_run / "model.onnx", val_images)
    difference = assert_agree(tf_logits, torch_logits, "trained_run", f"{precision} ONNX logits, tf vs torch",
                              precision)
    agreement = float((tf_logits.argmax(1) == torch_logits.argmax(1)).mean())
    print(f"{precision}: max |logit difference| {difference:.3g}, largest logit {np.abs(torch_logits).max():.3g}, "
          f"predictions equal on {agreement:.2%}")
    assert agreement >= MIN_ARGMAX_AGREEMENT[precision], \
        f"{precision}: predicted classes agree on {agreement:.2%} of validation images"


def test_training_curves_agree(runs):
    precision, *directories = runs
    torch_history, tf_history = (json.loads((run / "metrics.json").read_text())["history"] for run in directories)
    keys = ("train_loss", "train_acc", "val_loss", "val_acc")
    assert_agree(np.array([tf_history[-1][key] for key in keys]), np.array([torch_history[-1][key] for key in keys]),
                 "trained_run", f"{precision} final {', '.join(keys)}, tf vs torch", precision)


def test_the_precision_is_recorded(runs):
    precision, *directories = runs
    for run in directories:
        metrics = json.loads((run / "metrics.json").read_text())
        assert metrics["precision"] == metrics["config"]["precision"] == precision
        assert f"precision {precision}" in (run / "summary.txt").read_text()


def test_tensorboard_shows_both_frameworks_under_the_same_tags_and_steps(runs):
    """Side by side in TensorBoard: the same tags at the same steps, and the curves the two runs recorded."""
    precision, *directories = runs
    torch_scalars, tf_scalars = (read_scalars(run / "tensorboard") for run in directories)
    assert torch_scalars.keys() == tf_scalars.keys() and len(torch_scalars) == 7
    for tag in torch_scalars:
        assert [step for step, _ in torch_scalars[tag]] == [step for step, _ in tf_scalars[tag]], tag
    assert_agree(np.array([value for _, value in tf_scalars["loss/validation"]]),
                 np.array([value for _, value in torch_scalars["loss/validation"]]),
                 "trained_run", f"{precision} TensorBoard validation losses, tf vs torch", precision)

"""A run started in one framework and finished in the other ends where a run of the first framework alone ends,
within the one-epoch training tolerance: both run the same Adam rule, and the neutral checkpoint carries the
weights, BatchNorm statistics and Adam's step and moments."""

import subprocess
import sys

import numpy as np
import pytest

from parity_tests.pairs import assert_agree
from shared.formats import rundir
from shared.data.dataset import Split, load_digits_rgb
from shared.formats.onnx_check import onnx_logits
from shared.formats.tolerances import MIN_ARGMAX_AGREEMENT

# The slow half of the parity suite: it trains models (make test ARGS="parity_tests -m 'not training'" skips it)
pytestmark = pytest.mark.training

OTHER = {"torch": "tf", "tf": "torch"}


def train(framework: str, *flags: str) -> None:
    result = subprocess.run([sys.executable, "-m", f"cnnlab_{framework}.train", *flags], capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, f"cnnlab_{framework}.train {' '.join(flags)} failed:\n{result.stderr[-3000:]}"


@pytest.fixture(scope="module", params=["torch", "tf"])
def continued(request, tmp_path_factory):
    """(run of the first framework alone for 2 epochs, run of 1 epoch there + 1 epoch in the other)."""
    first, root = request.param, tmp_path_factory.mktemp(f"from-{request.param}")
    train(first, "--epochs", "2", "--out", str(root / "alone"))
    train(first, "--epochs", "1", "--out", str(root / "started"))
    train(OTHER[first], "--resume", str(root / "started"), "--epochs", "2", "--out", str(root / "finished"))
    return root / "alone", root / "finished", first


def test_the_continued_run_records_where_it_came_from(continued):
    alone, finished, first = continued
    metrics = rundir.read_json(finished / rundir.METRICS)
    assert metrics["framework"] == OTHER[first] and metrics["resumed_from"]["framework"] == first
    assert metrics["resumed_from"]["epoch"] == 1 and [r["epoch"] for r in metrics["history"]] == [1, 2]
    assert metrics["history"][0] == rundir.read_json(finished.parent / "started" / rundir.METRICS)["history"][0]


def test_the_continued_run_ends_where_the_single_framework_run_ends(continued):
    alone, finished, first = continued
    images = load_digits_rgb().images[Split.from_json(rundir.read_split(alone)).val].astype(np.float32)
    expected, actual = onnx_logits(alone / rundir.ONNX, images), onnx_logits(finished / rundir.ONNX, images)
    assert_agree(actual, expected, "trained_run", f"2-epoch logits: {first} alone vs {first} then {OTHER[first]}")
    agreement = float((actual.argmax(1) == expected.argmax(1)).mean())
    assert agreement >= MIN_ARGMAX_AGREEMENT["32-true"], f"predicted classes agree on {agreement:.2%} of validation images"

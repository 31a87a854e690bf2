"""The improved recipe trains the same in both frameworks: both CLIs run cifar100-improved (input BatchNorm,
crop-and-flip augmentation, L2 weight decay, a cosine schedule) from the same seed on a CIFAR-format archive.

32-true trains one epoch against the one-epoch bound; 64-true trains three, where the frameworks compute the same
thing and the exports must agree to rounding (shared/formats/tolerances.py)."""

import os
import subprocess
import sys

import numpy as np
import pytest

from parity_tests.pairs import assert_agree
from shared.data import cifar100
from shared.formats.onnx_check import onnx_logits
from shared.formats.tolerances import MIN_ARGMAX_AGREEMENT
from tests.support.helpers import write_cifar100_archive

# The slow half of the parity suite: it trains models (make test ARGS="parity_tests -m 'not training'" skips it)
pytestmark = pytest.mark.training

EPOCHS = {"32-true": 1, "64-true": 3}


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    # Shapes at random places: the crops and flips change what the model sees (plain colours would not)
    return write_cifar100_archive(tmp_path_factory.mktemp("data") / "cifar-100-python.tar.gz", 100, 20, kind="glyph")


@pytest.fixture(scope="module", params=sorted(EPOCHS))
def studies(request, archive, tmp_path_factory):
    """(precision, torch study, tf study), each trained by its CLI in its own process."""
    precision = request.param
    root = tmp_path_factory.mktemp(f"improved-{precision}")
    for framework in ("torch", "tf"):
        result = subprocess.run([sys.executable, "-m", f"cnnlab_{framework}.train", "--experiment",
                                 "cifar100-improved", "--data", str(archive), "--repeats", "1", "--epochs",
                                 str(EPOCHS[precision]), "--precision", precision, "--out", str(root / framework)],
                                capture_output=True, text=True, timeout=600,
                                env={**os.environ, "CNNLAB_HOME": str(root / "home")})
        assert result.returncode == 0, f"cnnlab_{framework}.train failed:\n{result.stderr[-3000:]}"
    return precision, root / "torch", root / "tf"


@pytest.mark.parametrize("arm", ["baseline", "improved"])
def test_both_frameworks_train_the_same_function(studies, archive, arm):
    precision, torch_study, tf_study = studies
    images = cifar100.load_cifar100(archive, cifar100.DEFAULT_CLASSES)[1].images.astype(np.float32)
    torch_logits = onnx_logits(torch_study / arm / "model.onnx", images)
    tf_logits = onnx_logits(tf_study / arm / "model.onnx", images)
    difference = assert_agree(tf_logits, torch_logits, "trained_run", f"{precision} {arm} ONNX logits, tf vs torch",
                              precision)
    agreement = float((tf_logits.argmax(1) == torch_logits.argmax(1)).mean())
    print(f"{precision} {arm}: max |logit difference| {difference:.3g}, largest logit "
          f"{np.abs(torch_logits).max():.3g}, predictions equal on {agreement:.2%}")
    assert agreement >= MIN_ARGMAX_AGREEMENT[precision], f"{arm}: predictions agree on {agreement:.2%} of images"

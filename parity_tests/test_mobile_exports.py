"""The phone exports hold the same function: the LiteRT file (from Keras) and the ExecuTorch file (from PyTorch) of
every registered spec, with identical weights, compute what their own framework computes and what each other
computes, on fresh random images. With the ONNX files of ``test_outputs.py``, the same weights run through every
format of both frameworks give one function.

The int8 LiteRT file is not checked here. Its logits have no bound (``shared.formats.tolerances``); what it must keep
is the float model's predictions and accuracy, and on random weights and random images that says nothing. Measured
on 64 random images per spec: one class wins for most images whatever they show (64 of 64 on flowers_baseline, 60 of
64 on ResNet-18), so agreement counts a constant; and the smallest top-two margins (3e-4 to 6e-3) are the size of
int8's logit changes (1e-4 to 5e-2), so a flip is a coin toss over the images, not a fault of the file. Counting only
images with a clear margin would pass by construction: a flip needs a logit change of half the margin.
``tests/test_export.py`` checks int8 where it means something: the export command on a trained digits run, against
``INT8_MIN_AGREEMENT`` and ``INT8_MAX_ACCURACY_DROP`` on the run's labelled validation images.
"""

from itertools import combinations

import pytest

import cnnlab_tf.exporters
import cnnlab_tf.runtime
import cnnlab_torch.exporters
import cnnlab_torch.runtime
from cnnlab_torch.exporters import EXECUTORCH_MAX_BATCH
from parity_tests.pairs import assert_agree, random_images
from shared.formats.onnx_check import onnx_logits
from shared.model.registry import ARCHITECTURES
from tests.support.helpers import executorch_installed

ARCHS = sorted(ARCHITECTURES)


@pytest.fixture(scope="module")
def mobile_exports(pairs, tmp_path_factory):
    """arch -> (ExecuTorch runner or None without ExecuTorch, LiteRT runner) of the pair's two models, each file
    exported once per module.
    ExecuTorch's lowering is most of this file's time (1 to 6 s a spec, ResNet-18 the most)."""
    cache: dict[str, tuple] = {}

    def get(arch: str):
        if arch not in cache:
            pair, directory = pairs(arch), tmp_path_factory.mktemp(f"{arch}-mobile")
            executorch_path, litert_path = directory / "model.pte", directory / "model.tflite"
            executorch = None  # Colab's stack has no ExecuTorch (tests.support.helpers.executorch_installed)
            if executorch_installed():
                cnnlab_torch.exporters.export_mobile(pair.torch_model, pair.spec, executorch_path)
                executorch = cnnlab_torch.runtime.mobile_runner(executorch_path)
            cnnlab_tf.exporters.export_mobile(pair.keras_model, pair.spec, litert_path)
            cache[arch] = (executorch, cnnlab_tf.runtime.mobile_runner(litert_path))
        return cache[arch]

    return get


@pytest.mark.parametrize("batch", [1, 7])
@pytest.mark.parametrize("arch", ARCHS)
def test_mobile_exports_agree_with_their_frameworks_and_each_other(arch, batch, pairs, mobile_exports):
    """Each file against its own model, then the two files against each other: two float32 programs of the same
    weights through XNNPACK's kernels, which differ only in summation order, so the bound is ``same_weights``, the
    one the two native models and the two ONNX files are held to."""
    pair = pairs(arch)
    executorch, litert = mobile_exports(arch)
    images = random_images(pair.spec, batch, seed=200 + batch)  # fresh: no export saw them
    torch_logits, keras_logits = pair.logits(images)
    litert_logits = litert(images)
    assert_agree(litert_logits, keras_logits, "litert_vs_native", f"{arch} LiteRT vs keras")
    if executorch is None:
        pytest.skip("no ExecuTorch on this stack: only LiteRT was checked")
    executorch_logits = executorch(images)
    assert_agree(executorch_logits, torch_logits, "executorch_vs_native", f"{arch} ExecuTorch vs torch")
    assert_agree(litert_logits, executorch_logits, "same_weights", f"{arch} LiteRT vs ExecuTorch")


@pytest.mark.parametrize("arch", ARCHS)
def test_executorch_runner_splits_a_batch_above_the_files_bound(arch, pairs, mobile_exports):
    """A file takes at most ``EXECUTORCH_MAX_BATCH`` images a call (its memory is planned for that bound); the
    runner splits a larger batch, here into 32 and 1, even when asked for the whole batch at once."""
    pair = pairs(arch)
    executorch, _ = mobile_exports(arch)
    if executorch is None:
        pytest.skip("no ExecuTorch on this stack")
    assert executorch.max_batch == EXECUTORCH_MAX_BATCH, f"{arch}: the file's bound is {executorch.max_batch}"
    images = random_images(pair.spec, EXECUTORCH_MAX_BATCH + 1, seed=300)
    torch_logits, _ = pair.logits(images)
    assert_agree(executorch(images, batch_size=len(images)), torch_logits, "executorch_vs_native",
                 f"{arch} ExecuTorch vs torch, {len(images)} images")


# The six ways to run one spec's weights: name -> (the framework that wrote it, the file's format or None)
FUNCTIONS = {"torch": ("torch", None), "keras": ("tf", None), "torch ONNX": ("torch", "onnx"),
             "keras ONNX": ("tf", "onnx"), "ExecuTorch": ("torch", "executorch"), "LiteRT": ("tf", "litert")}


def tolerance_row(first: str, second: str) -> str:
    """A file against the framework that wrote it: its format's row. Any other two: two float32 implementations of
    the same weights, ``same_weights``."""
    (framework, file_format), (other_framework, other_format) = FUNCTIONS[first], FUNCTIONS[second]
    if framework == other_framework and (file_format is None) != (other_format is None):
        return f"{file_format or other_format}_vs_native"
    return "same_weights"


@pytest.mark.parametrize("arch", ARCHS)
def test_every_format_of_both_frameworks_gives_one_function(arch, pairs, exports, mobile_exports):
    """Native PyTorch and Keras, both ONNX files in onnxruntime, ExecuTorch and LiteRT on the same images: all 15
    pairs agree."""
    pair = pairs(arch)
    torch_onnx, keras_onnx = exports(arch)
    executorch, litert = mobile_exports(arch)
    images = random_images(pair.spec, 3, seed=400)
    torch_logits, keras_logits = pair.logits(images)
    logits = {"torch": torch_logits, "keras": keras_logits, "torch ONNX": onnx_logits(torch_onnx, images),
              "keras ONNX": onnx_logits(keras_onnx, images), "LiteRT": litert(images)}
    if executorch is not None:  # Colab's stack has none: the other five still agree
        logits["ExecuTorch"] = executorch(images)
    assert logits.keys() == FUNCTIONS.keys() - ({"ExecuTorch"} if executorch is None else set())
    for first, second in combinations(logits, 2):
        assert_agree(logits[second], logits[first], tolerance_row(first, second), f"{arch} {second} vs {first}")

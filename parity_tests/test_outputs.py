"""Identical weights give identical functions: natively, layer by layer, and through both ONNX exports."""

import pytest

from parity_tests.pairs import assert_agree, assert_layers_agree, assert_opencv_agrees, random_images
from shared.formats.onnx_check import OPSET, describe_signature, onnx_logits
from shared.model.registry import ARCHITECTURES

ARCHS = sorted(ARCHITECTURES)
IR_OF_OPSET_18 = 8  # ONNX 1.13 released opset 18 with IR version 8


@pytest.mark.parametrize("arch", ARCHS)
def test_native_outputs_agree_layer_by_layer(arch, pairs):
    pair = pairs(arch)
    torch_layers, keras_layers = pair.layer_outputs(random_images(pair.spec, 7, seed=1))
    assert_layers_agree(torch_layers, keras_layers, "same_weights", f"{arch} torch vs keras")


@pytest.mark.parametrize("batch", [1, 7])
@pytest.mark.parametrize("arch", ARCHS)
def test_onnx_exports_agree_with_their_frameworks_and_each_other(arch, batch, pairs, exports):
    pair = pairs(arch)
    torch_onnx, keras_onnx = exports(arch)
    images = random_images(pair.spec, batch, seed=100 + batch)  # fresh: not the images the export checked itself on
    torch_logits, keras_logits = pair.logits(images)
    torch_onnx_logits, keras_onnx_logits = onnx_logits(torch_onnx, images), onnx_logits(keras_onnx, images)
    assert_agree(torch_onnx_logits, torch_logits, "onnx_vs_native", f"{arch} torch ONNX vs torch")
    assert_agree(keras_onnx_logits, keras_logits, "onnx_vs_native", f"{arch} keras ONNX vs keras")
    assert_agree(keras_onnx_logits, torch_onnx_logits, "same_weights", f"{arch} keras ONNX vs torch ONNX")


@pytest.mark.parametrize("arch", ARCHS)
def test_both_exports_share_one_onnx_format(arch, exports):
    """The two files are interchangeable: the same opset and IR version, with the same signature."""
    torch_signature, keras_signature = (describe_signature(path) for path in exports(arch))
    assert OPSET == 18, "the default opset is the highest tf2onnx 1.17 writes"
    assert (torch_signature["opset"], torch_signature["ir_version"]) == (18, IR_OF_OPSET_18), "torch export"
    assert (keras_signature["opset"], keras_signature["ir_version"]) == (18, IR_OF_OPSET_18), "keras export"
    assert torch_signature["inputs"] == keras_signature["inputs"]
    assert torch_signature["outputs"] == keras_signature["outputs"]


@pytest.mark.parametrize("arch", ARCHS)
def test_a_second_runtime_computes_the_same_logits(arch, pairs, exports):
    """OpenCV's DNN module, a runtime other than onnxruntime, loads both frameworks' files and agrees with it."""
    images = random_images(pairs(arch).spec, 3, seed=5)
    for framework, path in zip(("torch", "keras"), exports(arch)):
        assert_opencv_agrees(path, images, f"{arch} {framework} ONNX")

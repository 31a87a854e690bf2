"""The lowest opset both exports support: at opset 7 (the oldest runtimes) both frameworks' files of every
registered architecture have the same format and signature and compute the same logits, in onnxruntime and in
OpenCV. The default opset (18) is checked in test_outputs.py; every opset from 7 to 18 was measured the same way."""

import cv2
import pytest

import cnnlab_tf.export
import cnnlab_torch.export
from parity_tests.pairs import assert_agree, random_images
from shared.onnx_check import LOWEST_OPSET, describe_signature, onnx_logits
from shared.registry import ARCHITECTURES


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_both_frameworks_export_the_lowest_opset_alike(arch, pairs, tmp_path):
    assert LOWEST_OPSET == 7, "measured: onnxruntime has no opset-6 kernels for Div and Mul"
    pair = pairs(arch)
    check = random_images(pair.spec, 4, seed=99)
    paths = {"torch": tmp_path / "torch.onnx", "tf": tmp_path / "keras.onnx"}
    cnnlab_torch.export.export_onnx(pair.torch_model, pair.spec, paths["torch"], check, opset=7)
    cnnlab_tf.export.export_onnx(pair.keras_model, pair.spec, paths["tf"], check, opset=7)
    signatures = {framework: describe_signature(path) for framework, path in paths.items()}
    assert signatures["torch"] == signatures["tf"]
    assert (signatures["tf"]["opset"], signatures["tf"]["ir_version"]) == (7, 4)
    assert list(signatures["tf"]["inputs"]) == ["images"], "weights are initializers, not graph inputs"
    images = random_images(pair.spec, 5, seed=3)
    logits = {framework: onnx_logits(path, images) for framework, path in paths.items()}
    assert_agree(logits["tf"], logits["torch"], "same_weights", f"{arch} opset 7, tf vs torch")
    for framework, path in paths.items():
        net = cv2.dnn.readNetFromONNX(str(path))
        net.setInput(images)
        assert_agree(net.forward(), logits[framework], "onnx_runtimes",
                     f"{arch} opset 7 {framework}, OpenCV vs onnxruntime")

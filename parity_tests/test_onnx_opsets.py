"""The lowest opset both exports support: at opset 7 both frameworks' files of every registered architecture have the
same format and signature and compute the same logits, in onnxruntime and in OpenCV. The default opset (18) is checked
in test_outputs.py; every opset from 5 to 19 was measured the same way (shared.formats.onnx_check says what fails
outside 7 to 18)."""

import pytest

import cnnlab_tf.exporters
import cnnlab_torch.exporters
from parity_tests.pairs import assert_agree, assert_opencv_agrees, random_images
from shared.util.errors import UsageError
from shared.formats.onnx_check import LOWEST_OPSET, describe_signature, onnx_logits
from shared.model.registry import ARCHITECTURES

MEASURED_LOWEST_OPSET = 7  # at 6 onnxruntime runs neither export: no Div(6) kernel (PyTorch's), no Mul(6) (Keras's)
IR_OF_OPSET_7 = 4  # ONNX 1.2 paired opset 7 with IR 3, which would list every weight as a graph input


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_both_frameworks_export_the_lowest_opset_alike(arch, pairs, tmp_path):
    assert LOWEST_OPSET == MEASURED_LOWEST_OPSET, "the range was measured down to opset 7; measure again"
    pair = pairs(arch)
    # export_onnx has already matched each file against its native model in onnxruntime ("onnx_vs_native")
    paths = dict(zip(("torch", "keras"), pair.export(tmp_path, opset=LOWEST_OPSET)))
    signatures = {framework: describe_signature(path) for framework, path in paths.items()}
    assert signatures["torch"] == signatures["keras"], "the two files are not interchangeable"
    assert (signatures["keras"]["opset"], signatures["keras"]["ir_version"]) == (7, IR_OF_OPSET_7)
    assert list(signatures["keras"]["inputs"]) == ["images"], "weights are initializers, not graph inputs"
    images = random_images(pair.spec, 5, seed=3)
    logits = {framework: onnx_logits(path, images) for framework, path in paths.items()}
    assert_agree(logits["keras"], logits["torch"], "same_weights", f"{arch} opset 7, keras ONNX vs torch ONNX")
    for framework, path in paths.items():
        assert_opencv_agrees(path, images, f"{arch} opset 7 {framework} ONNX")


@pytest.mark.parametrize("opset", [6, 19])
@pytest.mark.parametrize("module", [cnnlab_torch.exporters, cnnlab_tf.exporters], ids=["torch", "keras"])
def test_an_opset_outside_the_range_is_refused_before_exporting(module, opset, pairs, tmp_path):
    pair = pairs("cifar_cnn_max")
    model = pair.torch_model if module is cnnlab_torch.exporters else pair.keras_model
    with pytest.raises(UsageError, match=f"opset {opset} .*pass an opset from 7 to 18"):
        module.export_onnx(model, pair.spec, tmp_path / "model.onnx", random_images(pair.spec, 2, seed=0), opset=opset)
    assert not list(tmp_path.iterdir()), "nothing is written"

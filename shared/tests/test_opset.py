"""The ONNX opsets both exporters write correctly, and the message for the others."""

import pytest

from shared.errors import UsageError
from shared.onnx_check import check_opset, ir_version


@pytest.mark.parametrize("opset", [7, 12, 18])
def test_the_measured_range_is_accepted(opset):
    assert check_opset(opset) == opset


def test_below_the_range_says_why_and_what_to_pass():
    with pytest.raises(UsageError) as raised:
        check_opset(6)
    message = str(raised.value)
    assert "opset 6" in message and "onnxruntime has no kernels" in message and "from 7 to 18" in message


def test_above_the_range_names_the_exporter_that_stops():
    with pytest.raises(UsageError) as raised:
        check_opset(19)
    assert "tf2onnx 1.17" in str(raised.value) and "from 7 to 18" in str(raised.value)


@pytest.mark.parametrize("opset, ir", [(7, 4), (8, 4), (9, 4), (10, 5), (11, 6), (13, 7), (15, 8), (18, 8)])
def test_ir_versions_are_the_ones_tf2onnx_writes(opset, ir):
    """Pinned from tf2onnx 1.17's own files at each opset (measured), which Keras's export cannot change."""
    assert ir_version(opset) == ir

"""The ONNX opsets both exporters write correctly, and the message for the others. The range, 7 to 18, was measured
(every registered architecture, both frameworks, opsets 5 to 19: shared.formats.onnx_check), so the boundaries are
pinned here as numbers rather than read back from the constants."""

import pytest

from shared.util.errors import UsageError
from shared.formats.onnx_check import check_opset, ir_version


def refusal(opset: int) -> str:
    with pytest.raises(UsageError) as raised:
        check_opset(opset)
    message = str(raised.value)
    assert "\n" not in message, f"a UsageError is printed as one line: {message!r}"
    return message


@pytest.mark.parametrize("opset", [7, 8, 12, 17, 18])
def test_the_measured_range_is_accepted(opset):
    assert check_opset(opset) == opset


@pytest.mark.parametrize("opset", [6, 1, 0, -3])
def test_below_the_range_says_why_and_what_to_pass(opset):
    message = refusal(opset)
    assert f"ONNX opset {opset} is below" in message, message
    assert "onnxruntime has no kernels for Div and Mul" in message, "the reason: what fails at opset 6"
    assert "pass an opset from 7 to 18" in message, "what to do"


@pytest.mark.parametrize("opset", [19, 20, 25])
def test_above_the_range_names_the_exporter_that_stops(opset):
    message = refusal(opset)
    assert f"ONNX opset {opset} is above" in message, message
    assert "tf2onnx 1.17" in message and "stops at 18" in message, "the reason: Keras's exporter's maximum"
    assert "pass an opset from 7 to 18" in message, "what to do"


@pytest.mark.parametrize("opset, ir", [(7, 4), (8, 4), (9, 4), (10, 5), (11, 6), (12, 7), (13, 7), (14, 7), (15, 8),
                                       (16, 8), (17, 8), (18, 8)])
def test_ir_versions_are_the_ones_tf2onnx_writes(opset, ir):
    """Pinned from tf2onnx 1.17's own files at each opset (measured), which Keras's export cannot change: ONNX's
    pairing (onnx.helper.VERSION_TABLE), except IR 4 rather than 3 at opsets 7 and 8."""
    assert ir_version(opset) == ir

"""The Open Inference Protocol's messages on bytes alone: binary tensors split where the header length says, every
malformed request a ``ProtocolError`` naming the field, and answers laid out as Triton's binary extension specifies
(little-endian FP32; BYTES elements each preceded by their length as a 4-byte little-endian integer)."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest

from shared.serving.protocol import ProtocolError, Signature, classification_strings, infer_response, parse_infer

SIGNATURE = Signature(image_size=2, classes=("cat", "dog", "owl"), max_batch=4)


def binary_request(images: np.ndarray, **output_parameters) -> tuple[bytes, str]:
    header = {"inputs": [{"name": "images", "shape": list(images.shape), "datatype": "FP32",
                          "parameters": {"binary_data_size": images.nbytes}}],
              "outputs": [{"name": "logits", "parameters": output_parameters}]}
    encoded = json.dumps(header).encode()
    return encoded + images.astype("<f4").tobytes(), str(len(encoded))


def test_binary_and_json_inputs_give_the_same_images():
    images = np.arange(2 * 2 * 2 * 3, dtype=np.float32).reshape(2, 2, 2, 3)
    body, length = binary_request(images)
    from_binary = parse_infer(body, length, SIGNATURE).images
    nested = json.dumps({"inputs": [{"name": "images", "shape": [2, 2, 2, 3], "datatype": "FP32",
                                     "data": images.tolist()}]}).encode()
    assert np.array_equal(from_binary, images) and np.array_equal(parse_infer(nested, None, SIGNATURE).images, images)


@pytest.mark.parametrize("length, words", [("0", "header's length"), ("abc", "header's length"),
                                           ("100000", "header's length")])
def test_a_wrong_header_length_is_refused(length, words):
    body, _ = binary_request(np.zeros((1, 2, 2, 3), np.float32))
    with pytest.raises(ProtocolError, match=words):
        parse_infer(body, length, SIGNATURE)


def test_binary_size_must_match_the_shape_and_the_bytes():
    body, length = binary_request(np.zeros((1, 2, 2, 3), np.float32))
    with pytest.raises(ProtocolError, match="binary_data_size"):
        parse_infer(body[:-4], length, SIGNATURE)  # a tensor 4 bytes short


@pytest.mark.parametrize("data", [[float("nan")] + [0.0] * 11, [1e300] * 12], ids=["nan", "overflow"])
def test_non_finite_pixels_are_refused(data):
    body = json.dumps({"inputs": [{"name": "images", "shape": [1, 2, 2, 3], "datatype": "FP32",
                                   "data": data}]}).encode()
    with pytest.raises(ProtocolError, match="NaN or an infinity"):
        parse_infer(body, None, SIGNATURE)


@pytest.mark.parametrize("outputs, words", [([{"name": "probs"}], "unknown output"),
                                            ([{"name": "logits", "parameters": {"classification": -1}}],
                                             "classification"),
                                            ([{"name": "logits", "parameters": {"binary_data": "yes"}}],
                                             "binary_data")])
def test_bad_requested_outputs_are_refused(outputs, words):
    body = json.dumps({"inputs": [{"name": "images", "shape": [1, 2, 2, 3], "datatype": "FP32",
                                   "data": [0] * 12}], "outputs": outputs}).encode()
    with pytest.raises(ProtocolError, match=words):
        parse_infer(body, None, SIGNATURE)


def test_binary_logits_answer_is_little_endian_fp32_after_the_header():
    body, length = binary_request(np.zeros((2, 2, 2, 3), np.float32), binary_data=True)
    request = parse_infer(body, length, SIGNATURE)
    logits = np.array([[0.5, -1.0, 2.0], [3.0, 0.0, -0.25]], np.float32)
    answer, header_length = infer_response("m", request, logits, SIGNATURE.classes)
    header = json.loads(answer[:header_length])
    assert header["outputs"][0]["shape"] == [2, 3] and header["outputs"][0]["datatype"] == "FP32"
    values = struct.unpack("<6f", answer[header_length:])
    assert values == (0.5, -1.0, 2.0, 3.0, 0.0, -0.25)
    assert header["outputs"][0]["parameters"]["binary_data_size"] == 24


def test_binary_classification_answer_is_length_prefixed_strings():
    body, length = binary_request(np.zeros((1, 2, 2, 3), np.float32), binary_data=True, classification=2)
    request = parse_infer(body, length, SIGNATURE)
    answer, header_length = infer_response("m", request, np.array([[0.5, 2.0, -1.0]], np.float32),
                                           SIGNATURE.classes)
    raw, strings = answer[header_length:], []
    while raw:
        size = int.from_bytes(raw[:4], "little")
        strings.append(raw[4:4 + size].decode())
        raw = raw[4 + size:]
    assert strings == ["2.000000:1:dog", "0.500000:0:cat"]
    assert json.loads(answer[:header_length])["outputs"][0]["datatype"] == "BYTES"


def test_classification_keeps_ties_in_index_order_and_caps_k_at_the_classes():
    rows = classification_strings(np.array([[1.0, 1.0, 0.0]]), ("a", "b", "c"), 5)
    assert rows == [["1.000000:0:a", "1.000000:1:b", "0.000000:2:c"]]

"""The Open Inference Protocol's (KServe v2 REST, Triton's HTTP API) infer messages, parsed and written without a web
framework, so that the rules are testable on bytes alone.

A request is JSON, optionally followed by raw tensors (Triton's binary tensor extension, which ``tritonclient.http``
uses by default): ``Inference-Header-Content-Length`` gives the JSON's length, and each binary input carries
``parameters.binary_data_size``. An output may ask for binary data (``binary_data``, or ``binary_data_output`` on the
whole request) and for the classification extension (``classification: k`` gives ``"score:index:label"`` strings,
the score being the output's own value, as Triton writes it). Every fault is ``ProtocolError``: a 400 that names the
field, never a 500.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from shared.formats.onnx_check import INPUT_NAME, OUTPUT_NAME

# The protocol's datatype names of the tensors this server reads and writes
DATATYPES = {"FP32": np.dtype("<f4"), "BYTES": None}
HEADER_LENGTH = "Inference-Header-Content-Length"


class ProtocolError(ValueError):
    """A request the protocol refuses: HTTP 400 with ``{"error": message}``."""


@dataclass(frozen=True)
class Signature:
    """A model's one input and one output, as its exported ONNX has them: NHWC float32 pixels and float32 logits,
    with a variable (-1) batch dimension."""
    image_size: int
    classes: tuple[str, ...]
    max_batch: int

    @property
    def input_shape(self) -> list[int]:
        return [-1, self.image_size, self.image_size, 3]

    @property
    def output_shape(self) -> list[int]:
        return [-1, len(self.classes)]

    def metadata(self, name: str, platform: str) -> dict:
        return {"name": name, "versions": ["1"], "platform": platform,
                "inputs": [{"name": INPUT_NAME, "datatype": "FP32", "shape": self.input_shape}],
                "outputs": [{"name": OUTPUT_NAME, "datatype": "FP32", "shape": self.output_shape}]}


@dataclass(frozen=True)
class RequestedOutput:
    binary: bool
    classification: int  # 0: the logits themselves


@dataclass
class InferRequest:
    images: np.ndarray  # float32 [n, H, W, 3]
    id: str | None
    output: RequestedOutput
    extra: dict = field(default_factory=dict)


def parse_infer(body: bytes, header_length: str | None, signature: Signature) -> InferRequest:
    """The images of an infer request, checked against the model's signature; ``ProtocolError`` otherwise."""
    header_bytes, binary = _split(body, header_length)
    try:
        header = json.loads(header_bytes)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ProtocolError(f"the request is not valid JSON ({error})") from None
    if not isinstance(header, dict):
        raise ProtocolError("the request must be a JSON object with \"inputs\"")
    request_id = header.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise ProtocolError("\"id\" must be a string")
    parameters = _object(header.get("parameters", {}), "parameters")
    inputs = header.get("inputs")
    if not isinstance(inputs, list) or len(inputs) != 1:
        raise ProtocolError(f"\"inputs\" must be a list of one tensor, {INPUT_NAME!r}")
    images = _input_tensor(_object(inputs[0], "inputs[0]"), binary, signature)
    return InferRequest(images, request_id, _requested_output(header.get("outputs"), parameters))


def _split(body: bytes, header_length: str | None) -> tuple[bytes, bytes]:
    if header_length is None:
        return body, b""
    try:
        length = int(header_length)
    except ValueError:
        length = -1
    if not 0 < length <= len(body):
        raise ProtocolError(f"{HEADER_LENGTH} is {header_length!r}; it must be the JSON header's length in bytes, "
                            f"at most the body's {len(body)}")
    return body[:length], body[length:]


def _object(value: Any, where: str) -> dict:
    if not isinstance(value, dict):
        raise ProtocolError(f"\"{where}\" must be a JSON object")
    return value


def _input_tensor(tensor: dict, binary: bytes, signature: Signature) -> np.ndarray:
    name, datatype, shape = tensor.get("name"), tensor.get("datatype"), tensor.get("shape")
    if name != INPUT_NAME:
        raise ProtocolError(f"unknown input {name!r}; the model takes {INPUT_NAME!r}")
    if datatype != "FP32":
        raise ProtocolError(f"input {INPUT_NAME!r} has datatype {datatype!r}; the model takes FP32")
    expected = signature.input_shape
    if (not isinstance(shape, list) or len(shape) != 4 or not all(type(size) is int for size in shape)
            or shape[1:] != expected[1:] or not 1 <= shape[0] <= signature.max_batch):
        raise ProtocolError(f"input {INPUT_NAME!r} has shape {shape!r}; the model takes [n, {expected[1]}, "
                            f"{expected[2]}, 3] with n from 1 to {signature.max_batch} (the server's --max-batch)")
    count = math.prod(shape)
    parameters = _object(tensor.get("parameters", {}), "inputs[0].parameters")
    if "binary_data_size" in parameters:
        size = parameters["binary_data_size"]
        if type(size) is not int or size != 4 * count or len(binary) != size:
            raise ProtocolError(f"input {INPUT_NAME!r} declares binary_data_size {size!r} with {len(binary)} bytes "
                                f"after the header; shape {shape} in FP32 is {4 * count} bytes")
        values = np.frombuffer(binary, DATATYPES["FP32"]).astype(np.float32)
    else:
        if binary:
            raise ProtocolError(f"{len(binary)} bytes follow the JSON header, but no input declares "
                                f"binary_data_size")
        values = _json_values(tensor.get("data"), count)
    if not np.isfinite(values).all():
        raise ProtocolError(f"input {INPUT_NAME!r} holds a NaN or an infinity; pixels are numbers from 0 to 255")
    return values.reshape(shape)


def _json_values(data: Any, count: int) -> np.ndarray:
    """The tensor's JSON data, flat or nested row-major, as float32: numbers only (booleans and strings refused)."""
    if not isinstance(data, list):
        raise ProtocolError(f"input {INPUT_NAME!r} needs \"data\", a list of numbers (or binary_data_size)")
    try:
        values = np.asarray(data)
    except ValueError:  # ragged nesting
        raise ProtocolError(f"input {INPUT_NAME!r}'s data is nested unevenly") from None
    if values.dtype.kind not in "iuf":
        raise ProtocolError(f"input {INPUT_NAME!r}'s data must hold only numbers")
    if values.size != count:
        raise ProtocolError(f"input {INPUT_NAME!r}'s data holds {values.size} numbers; its shape needs {count}")
    with np.errstate(over="ignore"):  # a huge integer becomes inf, refused as not finite
        return values.astype(np.float32).reshape(-1)


def _requested_output(outputs: Any, parameters: dict) -> RequestedOutput:
    binary = parameters.get("binary_data_output", False)
    if not isinstance(binary, bool):
        raise ProtocolError("\"parameters.binary_data_output\" must be true or false")
    if outputs is None:
        return RequestedOutput(binary, 0)
    if not isinstance(outputs, list) or len(outputs) != 1:
        raise ProtocolError(f"\"outputs\" must be a list of one output, {OUTPUT_NAME!r}")
    output = _object(outputs[0], "outputs[0]")
    if output.get("name") != OUTPUT_NAME:
        raise ProtocolError(f"unknown output {output.get('name')!r}; the model gives {OUTPUT_NAME!r}")
    own = _object(output.get("parameters", {}), "outputs[0].parameters")
    binary = own.get("binary_data", binary)
    classification = own.get("classification", 0)
    if not isinstance(binary, bool):
        raise ProtocolError("\"binary_data\" must be true or false")
    if type(classification) is not int or classification < 0:
        raise ProtocolError(f"\"classification\" is {classification!r}; it must be a whole number of classes, 1 "
                            f"or more")
    return RequestedOutput(binary, classification)


def classification_strings(logits: np.ndarray, classes: tuple[str, ...], k: int) -> list[list[str]]:
    """The classification extension's answer: per row, the ``k`` best as ``"score:index:label"``, best first."""
    k = min(k, len(classes))
    rows = []
    for row in logits:
        order = np.argsort(-row, kind="stable")[:k]
        rows.append([f"{row[index]:f}:{index}:{classes[index]}" for index in order])
    return rows


def infer_response(model_name: str, request: InferRequest, logits: np.ndarray,
                   classes: tuple[str, ...]) -> tuple[bytes, int | None]:
    """The response body, and the JSON header's length when binary data follows it (else ``None``)."""
    wanted = request.output
    if wanted.classification:
        strings = classification_strings(logits, classes, wanted.classification)
        shape, datatype = [len(strings), len(strings[0]) if strings else 0], "BYTES"
        flat: list = [text for row in strings for text in row]
        raw = b"".join(len(text.encode()).to_bytes(4, "little") + text.encode() for text in flat)
    else:
        shape, datatype = list(logits.shape), "FP32"
        flat = logits.astype(np.float32).reshape(-1).tolist()
        raw = logits.astype(DATATYPES["FP32"]).tobytes()
    output: dict[str, Any] = {"name": OUTPUT_NAME, "datatype": datatype, "shape": shape}
    if wanted.binary:
        output["parameters"] = {"binary_data_size": len(raw)}
    else:
        output["data"] = flat
    header = {"model_name": model_name, "model_version": "1", "outputs": [output]}
    if request.id is not None:
        header["id"] = request.id
    encoded = json.dumps(header, separators=(",", ":")).encode()
    if wanted.binary:
        return encoded + raw, len(encoded)
    return encoded, None

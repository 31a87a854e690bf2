"""Checks every ONNX export runs on itself, framework-neutral: the ONNX checker, then onnxruntime against the
native model's logits on the same images."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from shared.errors import UsageError
from shared.tolerances import compare

INPUT_NAME, OUTPUT_NAME, BATCH_DIM = "images", "logits", "batch"

# The default opset of both backends' exports: the newest that both exporters write, tf2onnx 1.17 (Keras) going no
# higher. PyTorch writes it with its dynamo exporter, and every opset below it with its TorchScript exporter: the
# dynamo exporter reaches lower opsets only through the ONNX version converter, which breaks there (onnx#5988).
OPSET = 18
# Measured (every registered architecture, both frameworks, opsets 6 to 18): from 7 up both exports pass the full
# ONNX check and match their native models in onnxruntime and OpenCV. At 6 both exporters write a file, but
# onnxruntime has no kernels for opset-6 Div and Mul, so nothing could run or check it.
LOWEST_OPSET = 7


def ir_version(opset: int) -> int:
    """The IR version both backends write at ``opset``: the one ONNX released with it (onnx.helper.VERSION_TABLE),
    and at least 4, from which initializers need not be graph inputs, as neither exporter lists them (tf2onnx
    writes IR 4 at opsets 7 and 8). Opset 18 gives IR 8."""
    import onnx

    paired = min(ir for _, ir, ai_onnx, *_ in onnx.helper.VERSION_TABLE if ai_onnx == opset)
    return max(paired, 4)


def set_format(model, opset: int) -> None:
    """Give an exported ``onnx.ModelProto`` the IR version of ``opset`` and only the images as a graph input. At
    opsets 7 and 8 both exporters also list every weight as a graph input (IR 3 required it); from IR 4 on weights
    are initializers alone, and the file's signature is the same at every opset."""
    model.ir_version = ir_version(opset)
    weights = {initializer.name for initializer in model.graph.initializer}
    data_inputs = [value for value in model.graph.input if value.name not in weights]
    del model.graph.input[:]
    model.graph.input.extend(data_inputs)


def check_opset(opset: int) -> int:
    """``opset`` when both backends export it correctly; else ``UsageError`` saying why and what to do."""
    if opset > OPSET:
        raise UsageError(f"ONNX opset {opset} is above what both exporters write: Keras's exporter (tf2onnx 1.17) "
                         f"stops at {OPSET}; pass an opset from {LOWEST_OPSET} to {OPSET}")
    if opset < LOWEST_OPSET:
        raise UsageError(f"ONNX opset {opset} is below what cnnlab can verify: at opset 6 and below onnxruntime has "
                         f"no kernels for Div and Mul, so the export could not be checked; pass an opset from "
                         f"{LOWEST_OPSET} to {OPSET} ({LOWEST_OPSET} runs on the oldest runtimes)")
    return opset


def onnx_logits(path: Path, images: np.ndarray) -> np.ndarray:
    """Logits of an exported model run by onnxruntime on the CPU."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run([OUTPUT_NAME], {INPUT_NAME: images.astype(np.float32)})[0]


def describe_signature(path: Path) -> dict:
    """Input and output names and shapes (a symbolic dimension shows as its name)."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)

    def shape(value) -> list:
        return [dim.dim_param or dim.dim_value for dim in value.type.tensor_type.shape.dim]

    return {"opset": max(entry.version for entry in model.opset_import if entry.domain in ("", "ai.onnx")),
            "ir_version": model.ir_version,
            "inputs": {value.name: shape(value) for value in model.graph.input},
            "outputs": {value.name: shape(value) for value in model.graph.output}}


def verify_export(path: Path, images: np.ndarray, native_logits: np.ndarray) -> dict:
    """Run the checker and compare onnxruntime with the native logits; raise if they disagree."""
    import onnx

    onnx.checker.check_model(str(path))  # the path form also works for models over 2 GB
    signature = describe_signature(path)
    expected = {INPUT_NAME: [BATCH_DIM, *images.shape[1:]]}
    assert signature["inputs"] == expected, f"{path}: inputs {signature['inputs']}, expected {expected}"
    assert list(signature["outputs"]) == [OUTPUT_NAME], f"{path}: outputs {signature['outputs']}"
    within, difference, bound = compare(onnx_logits(path, images), native_logits, "onnx_vs_native")
    if not within:
        raise RuntimeError(f"{path}: onnxruntime logits differ from the native model by {difference:.3g} "
                           f"(bound {bound:.3g}); the export is wrong")
    return {**signature, "max_abs_diff": difference, "checked_images": len(images)}

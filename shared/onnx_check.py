"""Checks every ONNX export runs on itself, framework-neutral: the ONNX checker, then onnxruntime against the
native model's logits on the same images."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from shared.tolerances import compare

INPUT_NAME, OUTPUT_NAME, BATCH_DIM = "images", "logits", "batch"

# Both backends write this opset and IR version, so their files are interchangeable. 18 is the one opset both
# exporters write correctly: tf2onnx 1.17 (Keras) goes no higher, and PyTorch's dynamo exporter reaches lower
# opsets only through the ONNX version converter, which breaks there (onnx#5988). IR 8 is the version ONNX pairs
# with opset 18 (onnx.helper.VERSION_TABLE); PyTorch writes IR 10 by default but uses nothing newer than IR 8.
OPSET, IR_VERSION = 18, 8


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

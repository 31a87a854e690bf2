"""Checks every ONNX export runs on itself, framework-neutral: the ONNX checker, then onnxruntime against the
native model's logits on the same images."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from shared.util.errors import UsageError
from shared.formats.tolerances import compare

INPUT_NAME, OUTPUT_NAME, BATCH_DIM = "images", "logits", "batch"

# The default opset of both backends' exports: the newest that both exporters write, tf2onnx 1.17 (Keras) going no
# higher ("Opset 19 is not supported yet"). PyTorch writes every opset with its TorchScript exporter: its dynamo
# exporter reaches opsets below 18 only through the ONNX version converter, which fails (onnx#5988) and then only
# logs it and writes opset 18 anyway. Measured: at 7 to 17 for cifar_improved and resnet18, which average-pool
# globally (the axes-input-to-attribute adapter of ReduceMean 18: "No initializer or constant input to node found"),
# at 7 to 15 for the other four ("No Adapter From Version $16 for Identity"); at 18 it is 50 times slower
# (cnnlab_torch.exporters).
OPSET = 18
# Measured (every registered architecture, both frameworks, opsets 5 to 19): from 7 to 18 both exports pass the full
# ONNX check, keep the signature and match their native models in onnxruntime and OpenCV. At 6 both files pass the
# checker and run in OpenCV, but onnxruntime has no opset-6 kernels for the input normalisation ("Could not find an
# implementation for Div(6)" from PyTorch's file, "Mul(6)" from Keras's), so neither file can be checked; at 5 the
# files are also invalid (PyTorch's BatchNormalization lacks `consumed_inputs`, tf2onnx's Cast has an INT `to`).
LOWEST_OPSET = 7


def ir_version(opset: int) -> int:
    """The IR version both backends write at ``opset``: the one ONNX released with it (onnx.helper.VERSION_TABLE),
    and at least 4, from which initializers need not be graph inputs. At opsets 7 and 8 (paired with IR 3) both
    exporters list every weight as a graph input too, PyTorch's stamped IR 3, tf2onnx's IR 4; ``set_format`` keeps
    only the images, as IR 4 allows, so the signature is the same at every opset. Opset 18 gives IR 8."""
    import onnx

    paired = min(ir for _, ir, ai_onnx, *_ in onnx.helper.VERSION_TABLE if ai_onnx == opset)
    return max(paired, 4)


def set_format(model, opset: int, metadata: dict[str, str] | None = None) -> None:
    """Give an exported ``onnx.ModelProto`` the IR version of ``opset`` (``ir_version``) and only the images as a
    graph input: the weights, which both exporters also list as inputs at opsets 7 and 8, stay initializers.
    ``metadata``: the run's identity (``shared.formats.verified.onnx_metadata``), as the model's metadata_props."""
    model.ir_version = ir_version(opset)
    for key, value in (metadata or {}).items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    weights = {initializer.name for initializer in model.graph.initializer}
    data_inputs = [value for value in model.graph.input if value.name not in weights]
    del model.graph.input[:]
    model.graph.input.extend(data_inputs)


def check_opset(opset: int) -> int:
    """``opset`` when both backends export it correctly (measured, see LOWEST_OPSET); else ``UsageError`` saying
    why and what to do."""
    if opset > OPSET:
        raise UsageError(f"ONNX opset {opset} is above what both exporters write: Keras's exporter (tf2onnx 1.17) "
                         f"stops at {OPSET}; pass an opset from {LOWEST_OPSET} to {OPSET}")
    if opset < LOWEST_OPSET:
        raise UsageError(f"ONNX opset {opset} is below what cnnlab can verify: at opset {LOWEST_OPSET - 1} and below "
                         f"onnxruntime has no kernels for Div and Mul, which both exports use, so neither file could "
                         f"be checked; pass an opset from {LOWEST_OPSET} to {OPSET} ({LOWEST_OPSET} for older "
                         f"runtimes)")
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

    # the path form also works for models over 2 GB; full_check adds strict shape inference
    onnx.checker.check_model(str(path), full_check=True)
    signature = describe_signature(path)
    expected = {INPUT_NAME: [BATCH_DIM, *images.shape[1:]]}
    assert signature["inputs"] == expected, f"{path}: inputs {signature['inputs']}, expected {expected}"
    assert list(signature["outputs"]) == [OUTPUT_NAME], f"{path}: outputs {signature['outputs']}"
    within, difference, bound = compare(onnx_logits(path, images), native_logits, "onnx_vs_native")
    if not within:
        raise RuntimeError(f"{path}: onnxruntime logits differ from the native model by {difference:.3g} "
                           f"(bound {bound:.3g}); the export is wrong")
    return {**signature, "max_abs_diff": difference, "checked_images": len(images)}

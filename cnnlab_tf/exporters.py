"""ONNX and LiteRT exports of a Keras model.

ONNX: an export through Keras's own ``model.export(format="onnx")`` (tf2onnx underneath), then a self-check.

tf2onnx names the graph's ends ``args_0`` and ``Identity:0`` with unnamed dimensions; they are renamed to the
PyTorch export's ``images``/``logits``/``batch`` so that a deployment can swap one file for the other.
"""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path

import numpy as np

import keras
import onnx

from cnnlab_tf.model import predict_logits, unmirrored_model
from shared.util.atomic import atomic_path
from shared.util.native_stderr import TENSORFLOW_EXPORT_NOTES, filtered
from shared.formats.onnx_check import (BATCH_DIM, INPUT_NAME, OPSET, OUTPUT_NAME, check_opset, ir_version, set_format,
                                       verify_export)
from shared.formats.runtimes import QUANTIZATIONS, quiet_stdout
from shared.model.specs import ModelSpec
from shared.training.backend import Exporter, ExportOptions


def _rename_ends(model: onnx.ModelProto) -> None:
    """Rename the single input and output and give the batch dimension a name, everywhere they are referenced."""
    renames = {model.graph.input[0].name: INPUT_NAME, model.graph.output[0].name: OUTPUT_NAME}
    for node in model.graph.node:
        node.input[:] = [renames.get(name, name) for name in node.input]
        node.output[:] = [renames.get(name, name) for name in node.output]
    for value in (model.graph.input[0], model.graph.output[0]):
        value.name = renames[value.name]
        value.type.tensor_type.shape.dim[0].dim_param = BATCH_DIM


def _float32(model: keras.Model, spec: ModelSpec) -> keras.Model:
    """The model itself when it computes in float32, else a float32 copy: the exported file is float32 whatever the
    training precision, like the PyTorch export."""
    if all(layer.dtype_policy.name == "float32" for layer in model.layers):
        return model
    copy = unmirrored_model(spec)  # rank 0 alone exports
    copy.set_weights([np.asarray(weight, np.float32) for weight in model.get_weights()])
    return copy


def export_onnx(model: keras.Model, spec: ModelSpec, path: Path, check_images: np.ndarray, opset: int = OPSET,
                metadata: dict[str, str] | None = None) -> dict:
    """Write ``path`` with input ``images`` [batch, H, W, 3] and output ``logits`` [batch, classes], and
    ``metadata`` (the run's identity) in its metadata_props; verify it."""
    path, opset = Path(path), check_opset(opset)
    model = _float32(model, spec)
    signature = [keras.InputSpec(shape=(None, spec.image_size, spec.image_size, 3), dtype="float32")]
    with tempfile.TemporaryDirectory() as scratch:
        raw = Path(scratch) / "model.onnx"
        with warnings.catch_warnings(), filtered(TENSORFLOW_EXPORT_NOTES):
            # Keras's bundled tf2onnx probes hasattr(np, "object"), which NumPy 2 answers with a FutureWarning
            # (keras/src/export/tf2onnx_lib.py); nothing of ours to fix.
            warnings.filterwarnings("ignore", "In the future `np.object` will be defined", FutureWarning)
            model.export(str(raw), format="onnx", input_signature=signature, opset_version=opset, verbose=False)
        exported = onnx.load(str(raw))
    assert exported.ir_version == ir_version(opset), \
        f"tf2onnx wrote IR {exported.ir_version} at opset {opset}, expected {ir_version(opset)}"
    set_format(exported, opset, metadata)
    _rename_ends(exported)
    with atomic_path(path) as part:
        onnx.save(exported, str(part))
    return verify_export(path, check_images, predict_logits(model, check_images, len(check_images)))


def export_mobile(model: keras.Model, spec: ModelSpec, path: Path, quantize: str | None = None) -> None:
    """Write ``path``, a LiteRT (TensorFlow Lite) flatbuffer with input ``images`` [batch, H, W, 3], the batch left
    free. ``TFLiteConverter.from_keras_model`` on the model itself: ``from_concrete_functions`` reports success but
    writes a file without its weights, whose outputs are NaN (measured with TensorFlow 2.21). The caller checks it
    (``shared.commands.export``)."""
    import tensorflow as tf

    assert quantize in (None, *QUANTIZATIONS), f"unknown quantization {quantize!r}"
    converter = tf.lite.TFLiteConverter.from_keras_model(_float32(model, spec))
    if quantize == "dynamic-int8":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    with warnings.catch_warnings(), filtered(TENSORFLOW_EXPORT_NOTES), quiet_stdout():
        flatbuffer = converter.convert()
    with atomic_path(Path(path)) as part:
        part.write_bytes(flatbuffer)


def _onnx(model, spec: ModelSpec, path: Path, options: ExportOptions) -> dict:
    return export_onnx(model, spec, path, options.check_images, options.opset or OPSET, options.metadata)


def _mobile(model, spec: ModelSpec, path: Path, options: ExportOptions) -> None:
    export_mobile(model, spec, path, options.quantize)


EXPORTERS = {"onnx": Exporter("onnx", _onnx), "litert": Exporter("litert", _mobile)}

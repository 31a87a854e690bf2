"""ONNX and ExecuTorch exports of a PyTorch model.

ONNX: an export, then a self-check, with PyTorch's TorchScript exporter (``torch.onnx.export(..., dynamo=False)``) at
every opset.

Its dynamo exporter (``dynamo=True``), which torch recommends, was tried and left: it writes opsets below 18 only
through the ONNX version converter, which fails (``shared.formats.onnx_check.OPSET`` says how), and at 18 it took 1.7 s
for the small CIFAR CNN (0.6 s of it registering onnxscript's torchlib, then importing and tracing with
torch.export) where the TorchScript exporter takes 0.03 s: more than ten digits epochs. Both files at 18 pass the
same checks (the parity suite's ``test_outputs.py``). torch marks the TorchScript exporter deprecated; should a
release drop it, ``dynamo=True`` at opset 18 is the way back.
"""

from __future__ import annotations

import copy
import warnings
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import nn

from cnnlab_torch.model import predict_logits
from cnnlab_torch.precision import set_model_precision
from cnnlab_torch.runtime import quiet_executorch
from shared.formats.runtimes import FORMATS, missing_runtime
from shared.util.atomic import atomic_path
from shared.formats.onnx_check import BATCH_DIM, INPUT_NAME, OPSET, OUTPUT_NAME, check_opset, set_format, verify_export
from shared.training.precision import DEFAULT_PRECISION
from shared.model.specs import ModelSpec
from shared.training.backend import Exporter, ExportOptions

# The largest batch an ExecuTorch file takes in one call. ExecuTorch plans every tensor's memory for its upper bound
# ahead of time (pytorch/executorch#8766), so the bound is memory a phone holds: 32 is the batch the latency table
# and ``predict`` use; a larger batch is split by the runner. torch.export's bound alone is not enough: the memory
# plan followed the example's batch (measured with executorch 1.5.1: an example of 2 or 8 planned 15 images for a
# bound of 256), so the example is the bound itself.
EXECUTORCH_MAX_BATCH = 32


def _float32_cpu(model: nn.Module) -> nn.Module:
    """A float32 CPU copy in inference mode, whatever the training precision and device: one file that runs
    anywhere, and that both frameworks' exports can be compared on."""
    cpu_model = copy.deepcopy(model).cpu().float().eval()
    set_model_precision(cpu_model, DEFAULT_PRECISION)
    return cpu_model


def export_onnx(model: nn.Module, spec: ModelSpec, path: Path, check_images: np.ndarray, opset: int = OPSET,
                metadata: dict[str, str] | None = None) -> dict:
    """Write ``path`` with input ``images`` [batch, H, W, 3] and output ``logits`` [batch, classes], and
    ``metadata`` (the run's identity) in its metadata_props; verify it."""
    path, opset = Path(path), check_opset(opset)
    cpu_model = _float32_cpu(model)
    # The example's batch dimension is exported as dynamic (dynamic_axes)
    example = torch.zeros(2, spec.image_size, spec.image_size, 3)
    with atomic_path(path) as part:
        with warnings.catch_warnings():
            # torch deprecates the TorchScript exporter (see above); it also calls its own deprecated
            # exporter_context (torch/onnx/_internal/torchscript_exporter).
            warnings.filterwarnings("ignore", "You are using the legacy TorchScript-based ONNX export",
                                    DeprecationWarning)
            warnings.filterwarnings("ignore", "The feature will be removed", DeprecationWarning)
            # The tracer warns about torch.tensor in NormalizeNHWC.forward in case its values vary between calls;
            # they are the spec's constant mean and std, the case the warning itself says is safe.
            warnings.filterwarnings("ignore", "torch.tensor results are registered as constants",
                                    torch.jit.TracerWarning)
            torch.onnx.export(cpu_model, (example,), str(part), dynamo=False, opset_version=opset,
                              input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                              dynamic_axes={INPUT_NAME: {0: BATCH_DIM}, OUTPUT_NAME: {0: BATCH_DIM}},
                              # At opsets 7 and 8 the exporter lists the weights as inputs whatever this says
                              # (IR 3 requires it), and warns when told False; set_format removes them.
                              keep_initializers_as_inputs=opset <= 8)
        exported = onnx.load(str(part))
        set_format(exported, opset, metadata)  # the IR version Keras's export writes, and only the images as input
        onnx.save(exported, str(part))
    return verify_export(path, check_images, predict_logits(cpu_model, check_images, len(check_images)))


def export_mobile(model: nn.Module, spec: ModelSpec, path: Path, quantize: str | None = None) -> None:
    """Write ``path``, an ExecuTorch program whose ``forward`` takes ``images`` [batch, H, W, 3] (batch 1 to
    ``EXECUTORCH_MAX_BATCH``) and gives logits, lowered to XNNPACK (ExecuTorch's CPU backend on phones):
    ``torch.export``, then ``to_edge_transform_and_lower``. The caller checks it (``shared.commands.export``)."""
    assert quantize is None, "cnnlab's ExecuTorch export is float32"
    with quiet_executorch():
        try:
            from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
            from executorch.exir import to_edge_transform_and_lower
        except ImportError as error:
            raise missing_runtime(FORMATS["executorch"], error) from None

    cpu_model = _float32_cpu(model)
    example = torch.zeros(EXECUTORCH_MAX_BATCH, spec.image_size, spec.image_size, 3)
    batch = torch.export.Dim("batch", min=1, max=EXECUTORCH_MAX_BATCH)
    exported = torch.export.export(cpu_model, (example,), dynamic_shapes=({0: batch},))
    program = to_edge_transform_and_lower(exported, partitioner=[XnnpackPartitioner()]).to_executorch()
    with atomic_path(Path(path)) as part:
        part.write_bytes(program.buffer)


def _onnx(model, spec: ModelSpec, path: Path, options: ExportOptions) -> dict:
    return export_onnx(model, spec, path, options.check_images, options.opset or OPSET, options.metadata)


def _mobile(model, spec: ModelSpec, path: Path, options: ExportOptions) -> None:
    export_mobile(model, spec, path, options.quantize)


EXPORTERS = {"onnx": Exporter("onnx", _onnx), "executorch": Exporter("executorch", _mobile)}

"""ONNX export through the dynamo exporter (``torch.onnx.export(..., dynamo=True)``), then a self-check."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import torch
from torch import nn

from cnnlab_torch.model import predict_logits
from shared.atomic import atomic_path
from shared.onnx_check import BATCH_DIM, INPUT_NAME, IR_VERSION, OPSET, OUTPUT_NAME, verify_export
from shared.precision import DEFAULT_PRECISION
from shared.specs import ModelSpec


def export_onnx(model: nn.Module, spec: ModelSpec, path: Path, check_images: np.ndarray) -> dict:
    """Write ``path`` with input ``images`` [batch, H, W, 3] and output ``logits`` [batch, classes]; verify it."""
    path = Path(path)
    # A float32 CPU graph whatever the training precision and device: one file that runs anywhere, and that both
    # frameworks' exports can be compared on.
    cpu_model = copy.deepcopy(model).cpu().float().eval()
    cpu_model.precision = DEFAULT_PRECISION
    # The example batch must be at least 2: with 1 the exporter specialises the dimension ("Invalid ranges [2:1]").
    example = torch.zeros(2, spec.image_size, spec.image_size, 3)
    program = torch.onnx.export(cpu_model, (example,), dynamo=True, opset_version=OPSET,
                                input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                                dynamic_shapes=({0: torch.export.Dim(BATCH_DIM)},), verbose=False)
    program.model.ir_version = IR_VERSION  # the version Keras's export writes (shared.onnx_check.IR_VERSION)
    with atomic_path(path) as part:
        program.save(part, external_data=False)  # one self-contained file (fine below ONNX's 2 GB limit)
    return verify_export(path, check_images, predict_logits(cpu_model, check_images, len(check_images)))

"""A Triton (and KServe) model repository for an exported ONNX file: ``DIR/NAME/1/model.onnx``, its
``config.pbtxt`` and a labels file. Triton loads it as it is, with its ONNX Runtime backend and dynamic batching, and
speaks the same protocol as ``serve``: a client written against one works against the other.

``config.pbtxt`` is protobuf text of Triton's ``ModelConfig``; with ``max_batch_size`` above 0 its ``dims`` leave
the batch dimension out, as Triton expects.
"""

from __future__ import annotations

from pathlib import Path

from shared.formats.onnx_check import INPUT_NAME, OUTPUT_NAME

FORMAT = "triton"
CONFIG, LABELS, VERSION = "config.pbtxt", "labels.txt", "1"
DEFAULT_MAX_BATCH = 32


def model_file(repository: Path, name: str) -> Path:
    return Path(repository) / name / VERSION / "model.onnx"


def config_text(name: str, image_size: int, classes: int, max_batch: int = DEFAULT_MAX_BATCH) -> str:
    return f"""name: "{name}"
platform: "onnxruntime_onnx"
max_batch_size: {max_batch}
input [
  {{
    name: "{INPUT_NAME}"
    data_type: TYPE_FP32
    dims: [ {image_size}, {image_size}, 3 ]
  }}
]
output [
  {{
    name: "{OUTPUT_NAME}"
    data_type: TYPE_FP32
    dims: [ {classes} ]
    label_filename: "{LABELS}"
  }}
]
dynamic_batching {{
  max_queue_delay_microseconds: 0
}}
version_policy: {{ latest: {{ num_versions: 1 }} }}
"""


def labels_text(classes: list[str]) -> str:
    return "".join(f"{name}\n" for name in classes)

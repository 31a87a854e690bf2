"""The exported files cnnlab writes, and the runtimes that run them outside the training frameworks.

Every format takes the same input, ``images`` [batch, H, W, 3] float32 pixels in 0..255 (the model normalises them
itself), and gives ``logits`` [batch, classes]. A runner opens one file in its runtime and maps images to logits,
batch by batch; the export self-checks, ``predict``, ``compare`` and the benchmark all run files through here.

ONNX runs in onnxruntime and LiteRT (TensorFlow Lite) in ``ai-edge-litert``'s interpreter, neither of which loads a
training framework. ExecuTorch's Python runtime takes torch tensors, so its runner is PyTorch's
(``cnnlab_torch.runtime.mobile_runner``): ``shared`` never imports a framework.
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Callable

import numpy as np

from shared.formats.readable import reading
from shared.util import signals
from shared.util.errors import UsageError
from shared.util.native_stderr import filtered


@dataclass(frozen=True)
class Format:
    name: str  # the --format value
    suffix: str
    runtime: str  # the package that runs it
    owners: tuple[str, ...]  # the frameworks whose export command writes it
    title: str

    @property
    def short_title(self) -> str:
        """The title for a table's column: LiteRT, not LiteRT (TensorFlow Lite)."""
        return self.title.split(" (")[0]


FORMATS = {
    "onnx": Format("onnx", ".onnx", "onnxruntime", ("torch", "tf"), "ONNX"),
    "litert": Format("litert", ".tflite", "ai-edge-litert", ("tf",), "LiteRT (TensorFlow Lite)"),
    "executorch": Format("executorch", ".pte", "executorch", ("torch",), "ExecuTorch"),
}
# export --quantize values, LiteRT only: dynamic-range int8, the converter's Optimize.DEFAULT without a representative
# dataset: int8 weights, float32 activations, about 4x smaller (checked on agreement and accuracy, not logits)
QUANTIZATIONS = ("dynamic-int8",)


def export_kinds(framework: str) -> list[tuple[str, str | None]]:
    """(format, quantization) of every file ``framework``'s export command writes, in ``FORMATS`` order."""
    kinds: list[tuple[str, str | None]] = []
    for name, format_ in FORMATS.items():
        if framework in format_.owners:
            kinds.append((name, None))
            if name == "litert":  # --quantize is LiteRT's
                kinds += [(name, quantize) for quantize in QUANTIZATIONS]
    return kinds


# What the LiteRT interpreter prints to fd 2 when it applies its XNNPACK delegate: a note, not an error
LITERT_NOTES = ("Created TensorFlow Lite XNNPACK delegate for CPU",)


def format_of(path: Path) -> Format:
    """The format of an exported file, from its suffix; ``UsageError`` for any other file."""
    for candidate in FORMATS.values():
        if Path(path).suffix.lower() == candidate.suffix:
            return candidate
    known = ", ".join(f"{item.suffix} ({item.title})" for item in FORMATS.values())
    raise UsageError(f"{path} is not a model cnnlab can run: expected a run directory or an exported file, {known}")


def default_file_name(format_name: str, quantize: str | None = None) -> str:
    """The file an export writes in its run directory: model.onnx, model.tflite, model-int8.tflite, model.pte."""
    return f"model{'-int8' if quantize else ''}{FORMATS[format_name].suffix}"


@dataclass
class Runner:
    """One exported file open in its runtime: ``runner(images)`` -> float32 logits."""
    format: Format
    path: Path
    image_size: int  # from the file's own input shape
    classes: int  # from its output shape
    runtime: str  # the runtime and its version, for reports
    threads: int
    max_batch: int  # the largest batch one call takes (ExecuTorch plans its memory for a bound); larger are split
    run_batch: Callable[[np.ndarray], np.ndarray] = field(repr=False)

    def __call__(self, images: np.ndarray, batch_size: int = 32) -> np.ndarray:
        images = np.asarray(images, np.float32)
        step = max(1, min(batch_size, self.max_batch))
        chunks = [np.asarray(self.run_batch(np.ascontiguousarray(images[start:start + step])), np.float32)
                  for start in range(0, len(images), step)]
        return np.concatenate(chunks) if chunks else np.zeros((0, self.classes), np.float32)


def _package_version(name: str) -> str:
    import importlib.metadata

    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "?"


def missing_runtime(format_: Format, error: ImportError) -> UsageError:
    signals.raise_if_requested(error)  # a stop during the import is not a missing package
    extra = " (cnnlab's mobile extra: pip install -e '.[mobile]'; on Colab it upgrades scikit-learn)" \
        if format_.name == "executorch" else ""
    return UsageError(f"{format_.title} files need {format_.runtime}, which is not installed here ({error}); "
                      f"install it with: pip install {format_.runtime}{extra}")


def _cnnlab_signature(inputs: list, outputs: list) -> bool:
    """Whether an ONNX session's ends are cnnlab's: ``images`` [batch, H, W, 3] in, ``logits`` [batch, classes]
    out, every size but the batch fixed."""
    from shared.formats.onnx_check import INPUT_NAME, OUTPUT_NAME

    if [value.name for value in inputs] != [INPUT_NAME] or [value.name for value in outputs] != [OUTPUT_NAME]:
        return False
    image, logits = inputs[0].shape, outputs[0].shape
    return (len(image) == 4 and image[3] == 3 and all(isinstance(size, int) for size in image[1:])
            and len(logits) == 2 and isinstance(logits[1], int))


def onnx_runner(path: Path, threads: int = 1) -> Runner:
    """An ONNX file in onnxruntime on the CPU, with ``threads`` threads for each operator."""
    import onnxruntime

    from shared.formats.onnx_check import INPUT_NAME, OUTPUT_NAME

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    # Idle pool threads sleep instead of spinning: the session shares the cores with other work (serve's event loop
    # and decoding), which spinning threads would take
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    inputs, outputs = session.get_inputs(), session.get_outputs()
    input_shape, output_shape = inputs[0].shape, outputs[0].shape
    if not _cnnlab_signature(inputs, outputs):
        found = ", ".join(f"{value.name} {value.shape}" for value in inputs)
        gives = ", ".join(f"{value.name} {value.shape}" for value in outputs)
        raise UsageError(f"{path} is not a cnnlab export: it takes {found} and gives {gives}, where cnnlab's files "
                         f"take {INPUT_NAME} [batch, H, W, 3] and give {OUTPUT_NAME} [batch, classes]; export the "
                         f"model with python -m cnnlab_torch.export or cnnlab_tf.export")
    return Runner(FORMATS["onnx"], Path(path), int(input_shape[1]), int(output_shape[1]),
                  f"onnxruntime {onnxruntime.__version__}", threads, 1 << 30,
                  lambda images: session.run([OUTPUT_NAME], {INPUT_NAME: images})[0])


def litert_runner(path: Path, threads: int = 1) -> Runner:
    """A LiteRT flatbuffer in ai-edge-litert's interpreter (XNNPACK on the CPU), with ``threads`` threads. The batch
    dimension is free in the file (-1); the interpreter is resized when the batch changes."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError as error:
        raise missing_runtime(FORMATS["litert"], error) from None
    with filtered(LITERT_NOTES):
        interpreter = Interpreter(model_path=str(path), num_threads=threads)
    (source,), (target,) = interpreter.get_input_details(), interpreter.get_output_details()
    shape = [int(size) for size in source["shape_signature"]]
    allocated: list[tuple[int, ...] | None] = [None]  # the input shape the interpreter's tensors are allocated for

    def run_batch(images: np.ndarray) -> np.ndarray:
        if allocated[0] != images.shape:
            interpreter.resize_tensor_input(source["index"], list(images.shape))
            with filtered(LITERT_NOTES):
                interpreter.allocate_tensors()
            allocated[0] = images.shape
        interpreter.set_tensor(source["index"], images)
        interpreter.invoke()
        return interpreter.get_tensor(target["index"])

    return Runner(FORMATS["litert"], Path(path), shape[1], int(target["shape_signature"][1]),
                  f"ai-edge-litert {_package_version('ai-edge-litert')}", threads, 1 << 30, run_batch)


@contextlib.contextmanager
def quiet_stdout():
    """Keras's and TensorFlow's converters print what they saved to stdout; a command's own output is the report."""
    with contextlib.redirect_stdout(io.StringIO()):
        yield


# Openers of the files that run without a framework; a .pte is opened by cnnlab_torch.runtime.mobile_runner
FRAMEWORK_FREE_RUNNERS: dict[str, Callable[[Path, int], Runner]] = {"onnx": onnx_runner, "litert": litert_runner}


def open_runner(path: Path, threads: int = 1,
                more: dict[str, Callable[[Path, int], Runner]] | None = None) -> Runner:
    """``path`` open in its runtime. ``more``: openers a backend adds (PyTorch's for ExecuTorch files)."""
    format_ = format_of(path)
    openers = {**FRAMEWORK_FREE_RUNNERS, **(more or {})}
    if format_.name not in openers:
        owner = format_.owners[0]
        side = "PyTorch" if owner == "torch" else "TensorFlow"
        raise UsageError(f"{path}: {format_.title} files run in {format_.runtime}, which needs the {side} side; use "
                         f"python -m cnnlab_{owner}.predict")
    with reading(path, f"{format_.title} file", remedy="export it again from its run"):
        return openers[format_.name](Path(path), threads)

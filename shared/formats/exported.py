"""What an exported file needs to be used alone, and the check every export passes before it is kept.

Each file that ``export`` writes gets a JSON sidecar beside it (``model.tflite`` -> ``model.tflite.json``): the class
names, the input size, the run it came from and the result of its self-check. ``predict`` on a bare file reads it;
a file inside its run directory (the ONNX file training writes) can also take them from the run's metrics.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from shared.formats import records, rundir, verified
from shared.formats.readable import reading
from shared.formats.runtimes import Runner, format_of
from shared.formats.verified import sidecar_path
from shared.formats.tolerances import INT8_MAX_ACCURACY_DROP, INT8_MIN_AGREEMENT, compare
from shared.util.errors import UsageError


class ExportCheckFailed(RuntimeError):
    """An exported file that does not compute what its model computes; the export is removed."""


def sidecar_text(description: dict) -> str:
    return json.dumps(description, indent=2) + "\n"


def describe(format_name: str, framework: str, metrics: dict, run_dir: Path, source: str, quantize: str | None,
             check: dict, file: Path, opset: int | None = None) -> dict:
    """The sidecar of ``file``, exported from a run: what ``predict`` needs (class names, input size), the run it
    came from (``shared.formats.verified.identity``), its own size and sha256, and its self-check."""
    return {"format": format_name, "framework": framework, **verified.identity(metrics),
            "input": "images [batch, H, W, 3], float32 RGB pixels 0..255 (the model normalises them)",
            "run": str(Path(run_dir).resolve()), "weights": source, "quantize": quantize, "opset": opset,
            **verified.file_record(file), "check": check, "exported": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


def export_remedy(path: Path) -> str:
    return (f"export it again from its run (python -m cnnlab_torch.export or cnnlab_tf.export RUN --format "
            f"{format_of(path).name}), which writes {sidecar_path(path).name} beside it")


def read_description(path: Path) -> tuple[dict, str]:
    """(class names, input size, arch, run...) of an exported file, and where they came from, in words, once the
    file is verified against them: its sidecar (size and sha256), else the finished run whose folder holds it (the
    run's record of its files). ``UsageError`` when neither describes it (for an ONNX file, its metadata then says
    whether it is a cnnlab export at all) or the file does not match."""
    path = Path(path)
    sidecar = sidecar_path(path)
    remedy = export_remedy(path)
    if sidecar.is_file():
        description = records.read_record(sidecar, records.SIDECAR)
        verified.check_file(path, description, sidecar.name, remedy)
        return description, f"{sidecar.name} beside it"
    if (path.parent / rundir.METRICS).is_file():
        metrics = rundir.read_finished_metrics(path.parent, "predict with")
        verified.verify_run_file(path.parent, metrics, path.name, remedy)
        return ({**verified.identity(metrics), "framework": metrics["framework"], "run": str(path.parent.resolve())},
                f"the run {path.parent} that holds it")
    if format_of(path).name == "onnx":
        with reading(path, "an ONNX file", remedy=remedy):
            carried = verified.identity_from_onnx(path)
        if carried is not None:  # its metadata names it, but holds no checksum of the weights around it
            raise UsageError(f"{path} is a cnnlab export (of a {carried.get('arch')} run, id {carried.get('run_id')}) "
                             f"whose {sidecar.name} is missing, so it cannot be verified before loading: a damaged "
                             f"weight would give wrong answers; put {sidecar.name} back beside it, or {remedy}")
        raise UsageError(f"{path} is not a cnnlab export: it has no {sidecar.name} beside it, no finished run around "
                         f"it, and no cnnlab metadata ({verified.METADATA_PREFIX}classes, "
                         f"{verified.METADATA_PREFIX}image_size) inside, so its class names and input size are "
                         f"unknown; {remedy}")
    raise UsageError(f"{path} has no description: no {sidecar.name} beside it and no finished run around it, so its "
                     f"class names are unknown and the file cannot be verified before loading; {remedy}, or keep it "
                     f"in its run directory")


def check_export(runner: Runner, images: np.ndarray, native_logits: np.ndarray, labels: np.ndarray,
                 quantized: bool) -> dict:
    """Run the file on the run's validation images and compare it with the native model's logits. A float file must
    match within its ``<format>_vs_native`` bound (``shared.formats.tolerances``); an int8 file must keep
    ``INT8_MIN_AGREEMENT`` of the predictions and lose at most ``INT8_MAX_ACCURACY_DROP`` of accuracy. Returns the
    measurements; raises ``ExportCheckFailed`` with them when the file fails."""
    logits = runner(images)
    kept = float(np.mean(logits.argmax(1) == native_logits.argmax(1)))
    native_accuracy = float(np.mean(native_logits.argmax(1) == labels))
    file_accuracy = float(np.mean(logits.argmax(1) == labels))
    report = {"runtime": runner.runtime, "checked_images": len(images), "predictions_equal": kept,
              "accuracy_native": native_accuracy, "accuracy_file": file_accuracy}
    if quantized:
        report["max_abs_diff"] = float(np.max(np.abs(logits - native_logits)))
        report.update(min_agreement=INT8_MIN_AGREEMENT, max_accuracy_drop=INT8_MAX_ACCURACY_DROP)
        if kept < INT8_MIN_AGREEMENT or native_accuracy - file_accuracy > INT8_MAX_ACCURACY_DROP:
            raise ExportCheckFailed(f"{runner.path.name}: the int8 file keeps {100 * kept:.1f}% of the float "
                                    f"model's predictions (at least {100 * INT8_MIN_AGREEMENT:.0f}% needed) and "
                                    f"scores {100 * file_accuracy:.1f}% against {100 * native_accuracy:.1f}% (at "
                                    f"most {100 * INT8_MAX_ACCURACY_DROP:.0f} points lower allowed)")
        return report
    within, difference, bound = compare(logits, native_logits, f"{runner.format.name}_vs_native")
    report.update(max_abs_diff=difference, bound=bound)
    if not within:
        raise ExportCheckFailed(f"{runner.path.name}: {runner.runtime} logits differ from the native model by "
                                f"{difference:.3g} (bound {bound:.3g}); the export is wrong")
    return report


def check_summary(report: dict) -> str:
    """The self-check in one line, as the export command prints it."""
    line = (f"{report['checked_images']} validation images in {report['runtime']}: max |Δlogit| "
            f"{report['max_abs_diff']:.2g}")
    if "bound" in report:
        line += f" (bound {report['bound']:.2g})"
    line += f", predictions equal {100 * report['predictions_equal']:.1f}%"
    if "min_agreement" in report:
        line += (f" (at least {100 * report['min_agreement']:.0f}%), accuracy {100 * report['accuracy_native']:.2f}% "
                 f"-> {100 * report['accuracy_file']:.2f}% (at most {100 * report['max_accuracy_drop']:.0f} points "
                 f"lower)")
    return line

"""What ``python -m cnnlab_<backend>.predict MODEL IMAGE_OR_FOLDER...`` and ``cnnlab_<backend>.predict(model, images)``
do, written once for both backends: classify a user's own images with a trained model.

MODEL is a finished run directory (a study's folder means its best arm), reloaded as ``evaluate`` reloads it, or an
exported file run in its own runtime: ONNX (onnxruntime), LiteRT (ai-edge-litert) or ExecuTorch. The class names and
the input size come from the run, or for a bare file from the sidecar its export wrote. Images are decoded exactly as
training decoded its image folders (``shared.data.image_folder.decode_image``: EXIF orientation, any mode, the same
resize). A corrupt image is reported and skipped, and the others are still predicted (exit status 1); a mistake in
the arguments stops with one line before anything runs (exit status 2). The model file is verified against its
run's record or its sidecar before any loader sees it (``shared.formats.verified``).
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Callable, Iterable, Sequence

import numpy as np

from shared.run.options import DEVICES
from shared.commands.cli import POSITIVE_WHOLE, OneLineParser, parse_or_exit, run_command
from shared.run.trained import find_run, load_trained
from shared.data.image_folder import IMAGE_SUFFIXES, ImageTooLarge, decode_image, visible
from shared.formats import rundir, verified
from shared.formats.exported import read_description
from shared.formats.predictions import records, table
from shared.formats.runtimes import Runner, format_of, open_runner
from shared.util.paths import kind_of
from shared.util.errors import EXIT_OK, EXIT_SOME_SKIPPED, EXIT_USAGE, FlagError, UsageError

DEFAULT_TOP = 5
DEFAULT_BATCH_SIZE = 32

# The runners a backend adds for the files that need a framework (PyTorch's for ExecuTorch)
Runners = dict[str, Callable[[Path, int], Runner]]


@dataclass
class Model:
    """A loaded model, whichever kind: ``logits(images, batch_size)``, its class names and its input size."""
    logits: Callable[[np.ndarray, int], np.ndarray]
    classes: list[str]
    image_size: int
    description: str  # what was loaded and where the class names came from, in words
    arch: str = ""
    runtime: str = ""  # what runs the forward pass: PyTorch 2.14.1, onnxruntime 1.32.0, ...
    platform: str = ""  # the Open Inference Protocol's name for that runtime (Triton's, where it has one)
    onnx: Path | None = None  # the same model as an ONNX file (a browser can run it), when there is one
    no_onnx: str = ""  # why there is none, in words


def load_model(framework: str, load_backend: Callable, model: Path, device: str = "cpu",
               runners: Runners | None = None, threads: int | None = None) -> Model:
    """The model behind ``model``: a run directory, or an exported file. ``UsageError`` when it cannot be used."""
    path = Path(model)
    expected = "pass a run directory (the --out of a train run) or an exported .onnx, .tflite or .pte file"
    if not path.exists():
        raise UsageError(f"model {path} does not exist; {expected}")
    if path.is_dir():
        return _run_model(framework, load_backend, path, device)
    if not path.is_file():
        raise UsageError(f"model {path} is {kind_of(path)}, not a model file; {expected}")
    return _file_model(path, runners, threads)


def _run_model(framework: str, load_backend: Callable, path: Path, device: str) -> Model:
    run_dir = find_run(path)
    metrics = rundir.read_finished_metrics(run_dir, "predict with")
    backend = load_backend()
    trained = load_trained(f"cnnlab_{framework}.predict", framework, backend, run_dir, metrics)
    if device != "cpu":
        backend.select_device(device)
    onnx, no_onnx = _run_onnx(run_dir, metrics)
    return Model(lambda images, batch: backend.predict_logits(trained.model, images, batch), trained.classes,
                 metrics["image_size"], f"{run_dir}: {trained.spec.name} from {trained.source}; "
                 f"{len(trained.classes)} classes and {metrics['image_size']} px input from its {rundir.METRICS}",
                 trained.spec.name, f"{RUNTIME_NAMES[framework]} {backend.version}", NATIVE_PLATFORMS[framework],
                 onnx, no_onnx)


RUNTIME_NAMES = {"torch": "PyTorch", "tf": "TensorFlow"}
NATIVE_PLATFORMS = {"torch": "pytorch", "tf": "tensorflow"}
FILE_PLATFORMS = {"onnx": "onnxruntime_onnx", "litert": "tensorflow_lite", "executorch": "executorch"}


def _run_onnx(run_dir: Path, metrics: dict) -> tuple[Path | None, str]:
    """The run's own model.onnx once verified against its record, or why it cannot stand for the run."""
    try:
        verified.verify_run_file(run_dir, metrics, rundir.ONNX, "export the run again")
    except UsageError as error:
        return None, str(error)
    return run_dir / rundir.ONNX, ""


def _file_model(path: Path, runners: Runners | None, threads: int | None) -> Model:
    format_ = format_of(path)  # an unknown kind of file is refused before anything loads
    description, source = read_description(path)
    runner = open_runner(path, threads or 1, runners)
    expected = int(description["image_size"])
    if runner.image_size != expected:
        raise UsageError(f"{path} takes {runner.image_size} px images, but {source} says {expected} px; the file "
                         f"and its description do not belong together: export the run again")
    run = Path(description.get("run") or "")
    if description.get("run") and (run / rundir.METRICS).is_file():
        try:
            trained_size = rundir.read_json(run / rundir.METRICS, "run's metrics").get("image_size")
        except (UsageError, AttributeError):  # that run's record is damaged: the file is verified by its own
            trained_size = None
        if trained_size is not None and trained_size != runner.image_size:
            raise UsageError(f"{path} takes {runner.image_size} px images, but the run it claims, {run}, trained at "
                             f"{trained_size} px; export that run again")
    if runner.classes != len(description["classes"]):
        raise UsageError(f"{path} gives {runner.classes} scores, but {source} names {len(description['classes'])} "
                         f"classes; export the run again")
    return Model(lambda images, batch: runner(images, batch), list(description["classes"]), runner.image_size,
                 f"{path}: {format_.title} in {runner.runtime} ({runner.threads} thread"
                 f"{'s' if runner.threads > 1 else ''}); {len(description['classes'])} classes and "
                 f"{runner.image_size} px input from {source}", str(description["arch"]), runner.runtime,
                 FILE_PLATFORMS[format_.name], path if format_.name == "onnx" else None,
                 "" if format_.name == "onnx" else f"{path.name} is a {format_.title} file; a browser runs ONNX: "
                 f"serve the run directory or its model.onnx")


def image_files(paths: Iterable[str | Path], prog: str = "predict") -> list[Path]:
    """Every image named, in order: a file as given; a folder walked recursively in sorted order (``folder_images``),
    hidden files and notebook debris (``.ipynb_checkpoints``) skipped. ``UsageError`` for a path that is missing,
    a file that is not an image, or a folder without images."""
    found = []
    for path in map(Path, paths):
        if path.is_dir():
            inside = sorted(folder_images(path, prog))
            if not inside:
                raise UsageError(f"folder {path} holds no images (looked for {', '.join(IMAGE_SUFFIXES)}, in "
                                 f"subfolders too); pass a folder of photos or the images themselves")
            found += inside
        elif path.is_file():
            if path.suffix.lower() not in IMAGE_SUFFIXES:
                raise UsageError(f"{path} is not an image file (expected {', '.join(IMAGE_SUFFIXES)}); pass images "
                                 f"or folders of them")
            found.append(path)
        elif path.exists():
            raise UsageError(f"{path} is {kind_of(path)}, not an image; pass image files or folders of them")
        else:
            raise UsageError(f"{path} does not exist; pass image files or folders of them")
    return found


def folder_images(root: Path, prog: str) -> list[Path]:
    """The images under ``root``, following links to folders (a photo library is often linked in), each real
    folder entered once, so a link back up the tree cannot loop; a folder met again is named on stderr."""
    found, entered = [], set()
    for folder, subfolders, files in os.walk(root, followlinks=True):
        real = os.path.realpath(folder)
        if real in entered:
            print(f"{prog}: warning: skipping {folder}: it is {real}, already walked (a link loops or repeats a "
                  f"folder)", file=sys.stderr)
            subfolders[:] = []
            continue
        entered.add(real)
        subfolders[:] = sorted(name for name in subfolders if visible(name))
        found += [Path(folder) / name for name in files if visible(name) and Path(name).suffix.lower() in
                  IMAGE_SUFFIXES and (Path(folder) / name).is_file()]
    return found


def decoded(files: Sequence[Path], image_size: int, prog: str) -> tuple[list[Path], np.ndarray, list[Path]]:
    """(the files that decoded, their pixels as float32, the files skipped). Each skip is named on stderr."""
    kept, pixels, skipped = [], [], []
    for file in files:
        try:
            pixels.append(decode_image(file, image_size))
            kept.append(file)
        except ImageTooLarge as error:
            skipped.append(file)
            print(f"{prog}: warning: skipping {file}: {error}", file=sys.stderr)
        except Exception as error:  # noqa: BLE001 - Pillow raises many types for broken files; each is a skip
            skipped.append(file)
            print(f"{prog}: warning: skipping {file}: not a readable image ({type(error).__name__}: {error})",
                  file=sys.stderr)
    images = np.stack(pixels).astype(np.float32) if pixels else np.zeros((0, image_size, image_size, 3), np.float32)
    return kept, images, skipped


def check_positive(**values: int | None) -> None:
    """The API's counts (top, batch_size, threads), held to the command line's rule: a whole number, 1 or more."""
    for name, value in values.items():
        if value is not None and (not isinstance(value, int) or value < 1):
            raise FlagError(f"{name}={value!r}: pass a whole number, 1 or more")


def predict(framework: str, load_backend: Callable, model, images, top: int = DEFAULT_TOP,
            batch_size: int = DEFAULT_BATCH_SIZE, device: str = "cpu", runners: Runners | None = None,
            threads: int | None = None) -> list[dict]:
    """The API: the records of every readable image (``records``); unreadable ones are named on stderr and left
    out. ``model``: a run directory, an exported file, or a ``Run`` from ``train``. ``images``: a path or a list of
    paths (files or folders). Raises ``UsageError`` for a mistake the user can fix."""
    prog = f"cnnlab_{framework}.predict"
    check_positive(top=top, batch_size=batch_size, threads=threads)
    model = getattr(model, "path", model)  # a Run from train(...)
    files = image_files([images] if isinstance(images, (str, Path)) else images, prog)
    loaded = load_model(framework, load_backend, model, device, runners, threads)
    kept, pixels, _ = decoded(files, loaded.image_size, prog)
    return records(kept, loaded.logits(pixels, batch_size) if len(kept) else np.zeros((0, 1)), loaded.classes,
                   min(top, len(loaded.classes)))


def build_parser(framework: str) -> OneLineParser:
    parser = OneLineParser(prog=f"cnnlab_{framework}.predict", description="Classify your own images with a trained "
                           "model: a run directory (of either framework) or an exported .onnx, .tflite or .pte file.")
    parser.add_argument("model", type=Path, help="a finished run directory (a study directory means its best arm) "
                        "or an exported model file")
    parser.add_argument("images", type=Path, nargs="+", help="image files, or folders walked recursively")
    parser.add_argument("--top", type=POSITIVE_WHOLE, default=DEFAULT_TOP, help=f"classes to show per image (default "
                        f"{DEFAULT_TOP})")
    parser.add_argument("--json", action="store_true", help="one JSON object per line: {\"image\", \"top\": "
                        "[{\"label\", \"index\", \"probability\"}, ...]}, best first")
    parser.add_argument("--batch-size", type=POSITIVE_WHOLE, default=DEFAULT_BATCH_SIZE,
                        help=f"images per forward pass (default {DEFAULT_BATCH_SIZE})")
    parser.add_argument("--device", choices=DEVICES, default="cpu", help="where a run's native "
                        "model runs (default cpu); exported files run on the CPU in their runtime")
    parser.add_argument("--threads", type=POSITIVE_WHOLE,
                        help="threads of an exported file's runtime (default 1, as on a phone)")
    return parser


def main(framework: str, load_backend: Callable, argv: list[str] | None = None,
         runners: Runners | None = None) -> int:
    parser = build_parser(framework)
    args = parse_or_exit(parser, argv)
    return run_command(parser.prog, lambda: command_line(framework, load_backend, args, parser.prog, runners))


def command_line(framework: str, load_backend: Callable, args, prog: str, runners: Runners | None) -> int:
    """The predictions the parsed flags ask for, printed; the exit status."""
    try:
        files = image_files(args.images, prog)
        loaded = load_model(framework, load_backend, args.model, args.device, runners, args.threads)
    except UsageError as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    print(f"{prog}: model {loaded.description}", file=sys.stderr)
    kept, pixels, skipped = decoded(files, loaded.image_size, prog)
    logits = loaded.logits(pixels, args.batch_size) if kept else np.zeros((0, len(loaded.classes)))
    predictions = records(kept, logits, loaded.classes, min(args.top, len(loaded.classes)))
    if args.json:
        print("\n".join(json.dumps(record) for record in predictions))
    elif predictions:
        print(table(predictions))
    if skipped:
        print(f"{prog}: {len(skipped)} of {len(files)} images could not be read and were skipped (named above)",
              file=sys.stderr)
        return EXIT_SOME_SKIPPED
    return EXIT_OK

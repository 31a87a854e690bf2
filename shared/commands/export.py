"""What ``python -m cnnlab_<backend>.export RUN --format ...`` does, written once for both backends: export a finished
run's model to a file another runtime runs, and prove the file computes what the model computes.

The model is reloaded as ``evaluate`` reloads it (``shared.run.trained``), and the file is written beside the
run's own files (``--out`` elsewhere). Every file is checked before it is kept: it is loaded back in its own runtime
and compared with the native model on the run's validation images (``shared.formats.exported.check_export``). A file
that fails is removed, and the command exits 1; an existing file of the same name is replaced only by one that
passed. A JSON sidecar beside the file holds what ``predict`` needs (class names, input size), the run's identity,
the file's size and sha256 (what ``predict`` verifies it against) and the check. A file written into its own run is
added to the run's record; one written into another run's folder is refused before any work.

PyTorch writes ONNX and ExecuTorch; Keras writes ONNX and LiteRT. A format the other framework writes is refused
with the command that writes it.
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from collections.abc import Callable

from shared.commands.cli import OneLineParser, parse_or_exit, run_command
from shared.training.config import opset_flag
from shared.run.trained import find_run, load_trained
from shared.formats import rundir, triton, verified
from shared.training.backend import FRAMEWORK_NAMES, ExportOptions
from shared.formats.exported import ExportCheckFailed, check_export, check_summary, describe, sidecar_path, sidecar_text
from shared.formats.onnx_check import LOWEST_OPSET, OPSET
from shared.formats.runtimes import FORMATS, QUANTIZATIONS, Runner, default_file_name, open_runner
from shared.run.experiments import recorded_validation
from shared.util.atomic import atomic_path
from shared.util.errors import EXIT_CHECK_FAILED, EXIT_OK, EXIT_USAGE, UsageError

NAMES = FRAMEWORK_NAMES


def build_parser(framework: str) -> OneLineParser:
    mine = [name for name, format_ in FORMATS.items() if framework in format_.owners]
    parser = OneLineParser(prog=f"cnnlab_{framework}.export", description=f"Export a finished run's model with "
                           f"{NAMES[framework]} ({', '.join(mine)}) and check the file against the model on the "
                           f"run's validation images.")
    parser.add_argument("run_dir", type=Path, help="a finished run directory of either framework (a study directory "
                        "exports its best arm)")
    parser.add_argument("--format", required=True, choices=[*FORMATS, triton.FORMAT],
                        help=f"the file to write; this framework writes {' and '.join(mine)}, and triton: a Triton "
                             f"or KServe model repository holding the ONNX file (--out names its folder)")
    parser.add_argument("--quantize", choices=QUANTIZATIONS, help="LiteRT only: int8 weights, float32 activations "
                        "(about 4x smaller); checked on agreement and accuracy")
    parser.add_argument("--opset", type=opset_flag, help=f"ONNX only: the opset, {LOWEST_OPSET} to {OPSET} (default "
                        f"{OPSET})")
    parser.add_argument("--out", type=Path, help="the file to write (default: in the run directory, "
                        "model.onnx, model.tflite, model-int8.tflite or model.pte); for triton, the repository's "
                        "folder (default: RUN/triton)")
    return parser


def check_request(framework: str, args) -> None:
    """Refuse what this framework cannot write, naming the command that can."""
    if args.format == triton.FORMAT:
        if args.quantize:
            raise UsageError("--quantize is for --format litert; a Triton repository holds the float32 ONNX file")
        if args.out is not None and args.out.suffix:
            raise UsageError(f"--out {args.out}: a Triton repository is a folder; pass a folder name")
        return
    format_ = FORMATS[args.format]
    if framework not in format_.owners:
        owner = format_.owners[0]
        quantize = f" --quantize {args.quantize}" if args.quantize else ""
        raise UsageError(f"--format {args.format}: {format_.title} files are written from {NAMES[owner]}, not "
                         f"{NAMES[framework]}; run python -m cnnlab_{owner}.export {args.run_dir} --format "
                         f"{args.format}{quantize} (it exports runs of either framework)")
    if args.quantize and args.format != "litert":
        raise UsageError(f"--quantize is for --format litert; {format_.title} files are exported in float32")
    if args.opset is not None and args.format != "onnx":
        raise UsageError(f"--opset is for --format onnx, not {args.format}")
    if args.out is not None and args.out.suffix.lower() != format_.suffix:
        raise UsageError(f"--out {args.out}: a {format_.title} file is named *{format_.suffix}; pass a name ending "
                         f"in {format_.suffix}")


def main(framework: str, load_backend: Callable, argv: list[str] | None = None,
         runners: dict[str, Callable[[Path, int], Runner]] | None = None) -> int:
    """``runners``: the backend's openers of the files it writes that need it (PyTorch's for ExecuTorch)."""
    parser = build_parser(framework)
    args = parse_or_exit(parser, argv)
    # A half-written file goes with atomic_path on a stop; an older one is kept
    return run_command(parser.prog, lambda: export(framework, load_backend, args, parser.prog, runners),
                       stopped=": nothing was written")


def check_destination(out: Path, run_dir: Path) -> bool:
    """Before any work: ``out`` can be written, and is not inside another run's directory, whose record would then
    describe a file it does not hold (``compare`` would measure this run's model as that one's). Returns whether
    ``out`` is one of the run's own files (in its folder), which the run's record then lists."""
    if out.is_dir():
        raise UsageError(f"--out {out} is a folder; pass a file name ending in {out.suffix or 'the format suffix'}")
    if not out.parent.is_dir():
        raise UsageError(f"--out {out}: folder {out.parent} does not exist; create it or pass another --out")
    if not os.access(out.parent, os.W_OK):
        raise UsageError(f"--out {out}: folder {out.parent} is not writable; pass another --out")
    own = run_dir.resolve()
    for folder in [out.parent.resolve(), *out.parent.resolve().parents]:
        if folder == own:
            return folder == out.parent.resolve()
        if (folder / rundir.METRICS).is_file():
            raise UsageError(f"--out {out} is inside {folder}, another run's directory: a run's folder holds only "
                             f"its own files; pass an --out outside it, or leave --out out to write into {run_dir}")
    return False


def export(framework: str, load_backend: Callable, args, prog: str,
           runners: dict[str, Callable[[Path, int], Runner]] | None) -> int:
    """The export the parsed flags ask for; its exit status."""
    try:
        check_request(framework, args)
        run_dir = find_run(args.run_dir)
        metrics = rundir.read_finished_metrics(run_dir, "export")
        repository = (args.out or run_dir / triton.FORMAT) if args.format == triton.FORMAT else None
        if repository is not None:
            out = triton.model_file(repository, metrics["arch"])
            out.parent.mkdir(parents=True, exist_ok=True)
        else:
            out = args.out or run_dir / default_file_name(args.format, args.quantize)
        own_run = check_destination(out, run_dir)
        split = rundir.read_split(run_dir) if (run_dir / rundir.SPLIT).is_file() else {}
        images, labels, data_note = recorded_validation(metrics, split)
        backend = load_backend()
        trained = load_trained(prog, framework, backend, run_dir, metrics)
    except UsageError as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    if data_note:
        print(f"{prog}: note: {data_note}", file=sys.stderr)
    file_format = "onnx" if repository is not None else args.format  # a repository holds an ONNX file
    format_ = FORMATS[file_format]
    opset = (args.opset or OPSET) if file_format == "onnx" else None
    images = images.astype("float32")
    native_logits = backend.predict_logits(trained.model, images, 64)
    try:
        with contextlib.ExitStack() as replaced_together:
            # The file, its sidecar and (in its own run) the run's record are each written under a temporary name,
            # and renamed into place only as the block ends, the record first and the file last: a check that fails,
            # a full disk or a stop before then leaves all three as they were.
            part = replaced_together.enter_context(atomic_path(out))
            sidecar = replaced_together.enter_context(atomic_path(sidecar_path(out)))
            record = replaced_together.enter_context(atomic_path(run_dir / rundir.METRICS)) if own_run else None
            if repository is not None:
                folder = out.parent.parent
                config = replaced_together.enter_context(atomic_path(folder / triton.CONFIG))
                config.write_text(triton.config_text(metrics["arch"], metrics["image_size"], len(metrics["classes"])))
                labels_file = replaced_together.enter_context(atomic_path(folder / triton.LABELS))
                labels_file.write_text(triton.labels_text(metrics["classes"]))
            report = backend.export(file_format, trained.model, trained.spec, part, ExportOptions(
                images[:8], opset, verified.onnx_metadata(verified.identity(metrics)), args.quantize))
            runner = open_runner(part, 1, runners)
            runner.path = out  # name the file by its final name in the report
            check = check_export(runner, images, native_logits, labels, quantized=bool(args.quantize))
            sidecar.write_text(sidecar_text(describe(file_format, framework, metrics, run_dir, trained.source,
                                                     args.quantize, check, part, opset)))
            if record is not None:  # the run's own file: its record says what it now is
                rundir.write_json(record, recorded_in_run(metrics, out.name, part, report))
    except ExportCheckFailed as error:
        print(f"{prog}: error: {error}; nothing was written", file=sys.stderr)
        return EXIT_CHECK_FAILED
    except OSError as error:
        print(f"{prog}: error: could not write {out} ({error.strerror or error}); nothing was written: free some "
              f"space or pass another --out", file=sys.stderr)
        return EXIT_USAGE
    size = out.stat().st_size
    print(f"{out}: {format_.title}{' ' + args.quantize if args.quantize else ''}, {size / 1e6:.2f} MB, "
          f"{trained.spec.name} from {trained.source}")
    print(f"  checked on {check_summary(check)}")
    if repository is not None:
        print(f"  a Triton/KServe model repository: {repository} ({metrics['arch']}/{triton.CONFIG}, "
              f"{metrics['arch']}/{triton.LABELS}, {metrics['arch']}/{triton.VERSION}/{out.name})")
    return EXIT_OK


def recorded_in_run(metrics: dict, name: str, written: Path, onnx_report: dict | None) -> dict:
    """The run's metrics.json for a file the export writes into it: its size and sha256 in ``files``, and for the
    run's own ``model.onnx`` the export's report (opset, signature, check) in ``onnx``, so that the record stays
    true ("opset 18" after a re-export at 9 would not be)."""
    files = metrics.get("files")
    updated = {**metrics, "files": {**(files if isinstance(files, dict) else {}), name: verified.file_record(written)}}
    if name == rundir.ONNX and onnx_report is not None:
        updated["onnx"] = onnx_report
    return updated

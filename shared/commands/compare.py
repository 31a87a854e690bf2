"""``python -m shared.compare RUN_A RUN_B``: a PyTorch run and a TensorFlow run of the same experiment, side by side.

Writes ``compare.md`` and ``compare.png`` (both frameworks' accuracy curves on one plot per model, and under it
their difference per epoch) into a new folder: final accuracy, seconds per epoch, images per second, parameter
counts, and how far the two ONNX exports agree on the validation set, from the runs' records; and measured now, in
this process run on this machine (``shared.measure.footprint``): a training step's peak memory, the inference
latency of the native models and of every exported file at batch 1 and 32, the files' sizes and the int8 accuracy
change. For two cifar100-pooling studies every variant is compared. The lab's theory section (which framework, at
what cost) ends the report, generated from these measurements (``shared.report.theory``).
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np

from shared.formats import history as keys
from shared.formats import records, rundir, verified
from shared.measure import footprint, serving
from shared.commands.cli import POSITIVE_WHOLE, OneLineParser, parse_or_exit, run_command
from shared.measure.latency import DEFAULT_PLAN, LatencyPlan
from shared.formats.runtimes import format_of
from shared.util.errors import EXIT_NOT_WRITTEN, EXIT_OK, EXIT_USAGE, UsageError
from shared.run.experiments import recorded_validation
from shared.formats.onnx_check import onnx_logits
from shared.formats.readable import reading
from shared.training.backend import FRAMEWORK_NAMES
from shared.training.precision import DEFAULT_PRECISION
from shared.report.reports import write_text
from shared.report.theory import theory_paragraph

PROG = "shared.compare"


def run_pairs(run_a: Path, run_b: Path) -> list[tuple[str, Path, Path]]:
    """(label, run of A, run of B) for each model both runs trained."""
    study_table = f"{rundir.COMPARISON}.json"
    for run in (run_a, run_b):
        if not (run / rundir.METRICS).is_file() and not (run / study_table).is_file():
            raise UsageError(f"{run} is not a finished cnnlab run directory (no {rundir.METRICS} or {study_table}); "
                             f"pass two train --out folders")
    studies = [(run / study_table).is_file() for run in (run_a, run_b)]
    if studies[0] != studies[1]:
        study, single = (run_a, run_b) if studies[0] else (run_b, run_a)
        raise UsageError(f"{study} is a study of several variants and {single} a single run; compare two studies, "
                         f"or a single run with one variant's folder ({study}/<variant>)")
    if studies[0]:
        variants = records.read_record(run_a / study_table, records.STUDY_TABLE)["variants"]
        return [(variant, run_a / variant, run_b / variant) for variant in variants]
    return [(rundir.read_finished_metrics(run_a, "compare")["arch"], run_a, run_b)]


def verify_files(run: Path, metrics: dict) -> None:
    """Every file of the run the report uses, checked against the run's record before anything loads it: the native
    checkpoint, the ONNX file and each exported file in its folder (``shared.formats.verified``). A file that is
    damaged or another run's would make the report describe a model the run never trained."""
    framework = metrics["framework"]
    native = rundir.NATIVE_CHECKPOINTS[framework]
    model = native if (run / native).is_file() else rundir.WEIGHTS  # as load_trained falls back
    exported = [rundir.ONNX, *(name for name in footprint.deploy_files(run) if name != rundir.ONNX)]
    verified.verify_run_file(run, metrics, model, "restore it from a copy, or train the run again")
    for name in exported:
        verified.verify_run_file(run, metrics, name, f"write it again with python -m cnnlab_{framework}.export "
                                                     f"{run} --format {format_of(Path(name)).name}")


def _onnx_logits(run: Path, framework: str, images: np.ndarray) -> np.ndarray:
    """The run's ONNX logits (the file verified by ``verify_files``); a file that still cannot be read is one line
    that says how to write it again."""
    with reading(run / rundir.ONNX, "an ONNX file",
                 remedy=f"write it again with python -m cnnlab_{framework}.export {run} --format onnx"):
        return onnx_logits(run / rundir.ONNX, images)


def onnx_agreement(runs: dict[str, tuple[Path, dict]], images: np.ndarray) -> dict:
    """How far the two runs' ONNX files agree on ``images``; ``runs``: side -> (run, metrics)."""
    logits_a, logits_b = (_onnx_logits(run, metrics["framework"], images) for run, metrics in runs.values())
    return {"max_abs_logit_diff": float(np.abs(logits_a - logits_b).max()),
            "max_abs_logit": float(np.abs(logits_a).max()),
            "argmax_agreement": float((logits_a.argmax(1) == logits_b.argmax(1)).mean()), "images": len(images)}


def compare(run_a: Path, run_b: Path, threads: int = 1, measure: bool = True, plan: LatencyPlan = DEFAULT_PLAN,
            serve: bool = True) -> dict:
    """Every figure of the report, per model: the runs' records, the ONNX agreement and the footprint (with
    ``measure``, the framework workers' measurements on ``threads`` threads; without, the files alone). With
    ``measure`` and ``serve``, the first model of each run is also served by its own framework and measured
    (``shared.measure.serving.served_run``): a study's every arm would cost a server each for one claim."""
    result = {}
    images = None  # every variant of a study saw the same data: load it once
    pairs, runs = run_pairs(run_a, run_b), []
    for label, a, b in pairs:
        metrics = {"a": rundir.read_finished_metrics(a, "compare"), "b": rundir.read_finished_metrics(b, "compare")}
        if metrics["a"]["data"] != metrics["b"]["data"] or metrics["a"]["arch"] != metrics["b"]["arch"]:
            raise UsageError(f"{a} and {b} did not train the same model on the same data; compare two runs of one "
                             f"experiment with the same flags")
        verify_files(a, metrics["a"])
        verify_files(b, metrics["b"])
        if images is None:
            images = recorded_validation(metrics["a"], rundir.read_split(a))[0]
            images = images.astype(np.float32)
        result[label] = {"runs": {side: {"framework": m["framework"], "framework_version": m["framework_version"],
                                         "device": m["device"], "processes": m.get("processes", 1),
                                         "replicas": m.get("replicas", 1),
                                         "precision": m.get("precision", DEFAULT_PRECISION),
                                         "final_val_acc": m["history"][-1][keys.VAL_ACC],
                                         "final_train_acc": m["history"][-1][keys.TRAIN_ACC],
                                         "seconds_per_epoch": m["seconds_per_epoch"],
                                         "images_per_second": m["images_per_second"],
                                         "params_trainable": m["params_trainable"],
                                         "val_acc": [r[keys.VAL_ACC] for r in m["history"]],
                                         "train_acc": [r[keys.TRAIN_ACC] for r in m["history"]]}
                                  for side, m in metrics.items()},
                         "onnx": onnx_agreement({"a": (a, metrics["a"]), "b": (b, metrics["b"])}, images)}
        runs += [(a, metrics["a"]), (b, metrics["b"])]
    # One worker per framework for every run, so each framework is imported once
    sides = iter(footprint.measure(runs, threads, plan, workers=measure))
    for label, _, _ in pairs:
        result[label]["footprint"] = {"plan": asdict(plan), "sides": {"a": next(sides), "b": next(sides)}}
    if measure and serve:
        label, a, b = pairs[0]
        result[label]["served"] = {side: serving.served_run(run, result[label]["runs"][side]["framework"],
                                                                threads=threads)
                                   for side, run in (("a", a), ("b", b))}
    return result


def markdown(result: dict, run_a: Path, run_b: Path) -> str:
    lines = ["# Framework comparison", "", f"A: `{run_a}`  ", f"B: `{run_b}`", ""]
    for label, entry in result.items():
        a, b = entry["runs"]["a"], entry["runs"]["b"]
        onnx = entry["onnx"]
        lines += [f"## {label}", "", f"| | {a['framework']} {a['framework_version']} | "
                  f"{b['framework']} {b['framework_version']} |", "|---|---|---|"]
        rows = (("device", "{device}"), ("precision", "{precision}"),
                ("final validation accuracy", "{final_val_acc:.2%}"),
                ("final train accuracy", "{final_train_acc:.2%}"), ("seconds per epoch", "{seconds_per_epoch:.2f}"),
                ("training images per second", "{images_per_second:,.0f}"),
                ("trainable parameters", "{params_trainable:,}"))
        lines += [f"| {name} | {fmt.format(**a)} | {fmt.format(**b)} |" for name, fmt in rows]
        sides = entry["footprint"]["sides"]
        lines += [f"| {name} | {cell_a} | {cell_b} |" for name, cell_a, cell_b in footprint.memory_rows(sides)]
        lines += ["", f"ONNX exports on the {onnx['images']} validation images: max |logit difference| "
                  f"{onnx['max_abs_logit_diff']:.3g} (largest logit {onnx['max_abs_logit']:.3g}), same predicted "
                  f"class on {onnx['argmax_agreement']:.2%} of images.", ""]
        lines += footprint.latency_table(sides, entry["footprint"]["plan"]) + [""]
    lines += [f"![accuracy curves]({rundir.COMPARE}.png)", ""]
    label, entry = next(iter(result.items()))
    lines += ["## Theory section, measured", "", theory_paragraph(label, entry), ""]
    return "\n".join(lines)


def plot(result: dict, path: Path) -> None:
    """Per model, both runs' train and validation accuracy per epoch, and under them a small panel of the difference
    (B minus A, in points) with its zero line. The two frameworks' curves often coincide, so neither may hide the
    other: A is a wide, light solid line and B a thin dashed line with small markers on top of it. One legend for the
    whole figure, under the axes, so that it covers no epoch."""
    from shared.report.plots import pyplot

    plt = pyplot()
    figure, axes = plt.subplots(2, len(result), figsize=(max(7.5, 6 * len(result)), 6.2), squeeze=False,
                                sharex="col", height_ratios=(3, 1.2), layout="constrained")
    parts = (("train_acc", "train", "tab:blue"), ("val_acc", "validation", "tab:red"))
    styles = {"a": {"linestyle": "-", "linewidth": 7, "alpha": 0.3, "solid_capstyle": "round"},
              "b": {"linestyle": "--", "linewidth": 1.2, "marker": "o", "markersize": 3}}
    # the train difference wide and light under the validation one: both stay visible where they are equal
    differences: dict[str, dict] = {"train": {"linewidth": 3.5, "alpha": 0.5},
                                    "validation": {"linewidth": 1.2, "marker": "o", "markersize": 3}}
    legend: list = []
    for (accuracy, difference), (label, entry) in zip(axes.T, result.items()):
        runs = entry["runs"]
        names, change_name = _side_names(runs["a"]["framework"], runs["b"]["framework"])
        largest = 1.0  # points: identical runs draw a flat line on the zero line of a +-1 point panel
        lines = {}
        for field, part, colour in parts:
            for side in ("a", "b"):
                values = runs[side][field]
                lines[side, part], = accuracy.plot(np.arange(1, len(values) + 1), values, color=colour,
                                                   **styles[side])
            a, b = (np.asarray(runs[side][field], dtype=float) for side in ("a", "b"))
            epochs = min(len(a), len(b))
            change = 100 * (b[:epochs] - a[:epochs])
            lines["difference", part], = difference.plot(np.arange(1, epochs + 1), change, color=colour,
                                                         **differences[part])
            largest = max(largest, float(np.abs(change).max(initial=0)))
        if not legend:  # every model of a comparison has the same two frameworks
            legend = [(lines[side, part], f"{names[side]} {part}") for side in ("a", "b") for _, part, _ in parts]
            legend += [(lines["difference", part], f"{change_name}, {part}") for _, part, _ in parts]
        accuracy.set_title(label)
        accuracy.set_ylabel("accuracy")
        accuracy.set_ylim(0, 1.02)  # a point at 1.0 whole, not halved by the frame
        accuracy.grid(alpha=0.3)
        difference.axhline(0, color="black", linewidth=0.8, zorder=1)
        difference.set_ylim(-1.2 * largest, 1.2 * largest)
        difference.set_ylabel(f"{change_name}\n(points)")
        difference.set_xlabel("epoch")
        difference.grid(alpha=0.3)
    figure.legend(*zip(*legend), loc="outside lower center", ncol=3, frameon=False)
    figure.savefig(path, dpi=100)
    plt.close(figure)


def _side_names(framework_a: str, framework_b: str) -> tuple[dict[str, str], str]:
    """What the figure calls each run (its framework's name, or A and B when both ran the same framework), and
    their difference ("Keras − PyTorch")."""
    names = {"a": FRAMEWORK_NAMES.get(framework_a, framework_a), "b": FRAMEWORK_NAMES.get(framework_b, framework_b)}
    if names["a"] == names["b"]:
        return {"a": f"A ({names['a']})", "b": f"B ({names['b']})"}, "B − A"
    return names, f"{names['b']} − {names['a']}"


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(prog=PROG, description="Compare a PyTorch run and a TensorFlow run of the same experiment: "
                           "accuracy, time, parameters and ONNX agreement.")
    parser.add_argument("run_a", type=Path, help="a run directory (e.g. from cnnlab_torch.train)")
    parser.add_argument("run_b", type=Path, help="a run directory of the same experiment (e.g. from cnnlab_tf.train)")
    parser.add_argument("--out", type=Path, default=None, help="new folder for compare.md and compare.png "
                        "(default: compare-<A>-vs-<B> beside RUN_A)")
    parser.add_argument("--threads", type=POSITIVE_WHOLE, default=1, help="threads for inference in every runtime "
                        "and in the native models (default 1, as a phone runs a model)")
    parser.add_argument("--no-measure", dest="measure", action="store_false", help="skip the framework workers "
                        "(training memory and latency): report the runs' records and files only, in seconds")
    parser.add_argument("--no-serve", dest="serve", action="store_false", help="skip serving each run's model "
                        "(cold start, memory, latency and throughput behind HTTP, about 10 s a run)")
    args = parse_or_exit(parser, argv)
    # A stop ends the workers with it and removes the temporary files (footprint.measure); nothing is written
    return run_command(PROG, lambda: command_line(args), stopped=": nothing was written")


def command_line(args) -> int:
    """The comparison the parsed flags ask for, written and printed; its exit status."""
    try:
        out = compare_runs(args.run_a, args.run_b, args.out, args.threads, args.measure, serve=args.serve)
    except UsageError as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except NotWritten as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return EXIT_NOT_WRITTEN
    print((out / f"{rundir.COMPARE}.md").read_text())
    print(f"wrote {out}")
    return EXIT_OK


class NotWritten(Exception):
    """The report's folder could not be written (a full or read-only disk); nothing of it is left."""


def compare_runs(run_a: Path, run_b: Path, out: Path | None = None, threads: int = 1, measure: bool = True,
                 plan: LatencyPlan = DEFAULT_PLAN, serve: bool = True) -> Path:
    """Write compare.md, compare.png and compare.json into ``out`` (default: compare-<A>-vs-<B> beside ``run_a``)
    and return it; ``UsageError`` for runs that cannot be compared, before anything is written. ``threads``:
    inference threads in every runtime; ``measure=False`` skips the framework workers (memory and latency);
    ``plan``: the latency's batches and repeats (``shared.measure.latency.LatencyPlan``). The folder is written
    under a temporary name and renamed into place, as checkpoints are: it exists complete or not at all, and a
    failed write (``NotWritten``) leaves nothing that would block the retry."""
    if threads < 1:
        raise UsageError(f"threads={threads}: inference needs at least 1 thread")
    run_a, run_b = Path(run_a), Path(run_b)
    out = Path(out) if out is not None else run_a.parent / f"{rundir.COMPARE}-{run_a.name}-vs-{run_b.name}"
    rundir.check_new(out)
    result = compare(run_a, run_b, threads, measure, plan, serve)
    rundir.check_new(out)  # again: measuring takes minutes, and another compare may have written it meanwhile
    part = out.with_name(f".{out.name}.part-{os.getpid()}")
    try:
        shutil.rmtree(part, ignore_errors=True)
        part.mkdir(parents=True)
        plot(result, part / f"{rundir.COMPARE}.png")
        write_text(part / f"{rundir.COMPARE}.md", markdown(result, run_a, run_b))
        rundir.write_json(part / f"{rundir.COMPARE}.json", result)
        if out.exists():  # an empty folder (check_new allows one): replaced
            shutil.rmtree(out)
        os.replace(part, out)
    except OSError as error:
        raise NotWritten(f"could not write {out} ({error.strerror or error}); nothing of it was left, so the same "
                         f"command works again once there is room: free some space or pass another --out") from None
    finally:
        shutil.rmtree(part, ignore_errors=True)
    return out


if __name__ == "__main__":
    sys.exit(main())

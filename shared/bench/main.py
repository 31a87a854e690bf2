"""``python -m shared.bench``: how fast cnnlab trains, as ratios measured in one run on one machine.

Each framework runs in a worker process of its own (``cnnlab_torch.bench``, then ``cnnlab_tf.bench``), so torch and
TensorFlow never share a process and never share the CPU while one is being timed. The workers return raw seconds
(``shared.measure.worker``); this module plans their tasks, turns the seconds into ratios, prints a table and
writes JSON. The ratios:

- cnnlab / reference: cnnlab's training loop (``fit``) against the framework's own best-practice loop on the same
  model, data and Adam (PyTorch: a bare loop over float32 batches already on the device; Keras: ``model.fit``), in
  steady-state seconds per step. Above 1, cnnlab is slower.
- Keras / PyTorch: the two cnnlab loops' seconds per step, for every registered architecture. Above 1, Keras is
  slower.
- FLOP/s / peak: a training step's FLOPs (``shared.model.flops``) per second against a float32 2048x2048 matmul's,
  measured in the same run in both frameworks; the faster of the two is the machine's peak.
- The frozen-feature cache (flowers-resnet18): an epoch of the full frozen model against an epoch of the head on
  cached features, and a whole run of the lab's epochs, the features' one-off computation included.
- The decode cache: an epoch of batches from the seed lab's torchvision pipeline, which decodes every JPEG every
  epoch, against cnnlab's decoded uint8 arrays, and a whole first run of the flowers lab's epochs, the one-off
  decoding included.
- Whole commands (``shared.bench.whole_commands``): the default run's fixed cost by phase, and every architecture at
  32 px through both command lines, Keras / PyTorch.
- Inference latency (``shared.bench.latency``): every architecture natively and in every exported format,
  at batch 1 and 32, on ``--threads`` threads; ``--latency-only`` measures this table alone.
"""

from __future__ import annotations

import json
import math
import os
import platform
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypedDict

import numpy as np

from shared.run.options import DEVICES
from shared.bench import latency as bench_latency
from shared.bench import whole_commands
from shared.bench.tables import format_report
from shared.util.atomic import atomic_path
from shared.util.flags import POSITIVE_WHOLE, OneLineParser, parse_or_exit
from shared.measure.worker import WorkerFailed, run_worker_process, steady_seconds
from shared.measure.latency import DEFAULT_PLAN, LatencyPlan
from shared.data.dataset import DIGITS_IMAGE_SIZE
from shared.util.environment import package_versions
from shared.run.experiments import EXPERIMENTS
from shared.run.feature_cache import first_trainable_layer
from shared.model.flops import train_step_flops
from shared.model.registry import ARCHITECTURES, build_spec

FRAMEWORKS = ("torch", "tf")
CLASSES = 5  # the flowers lab's; the head's size barely changes a step's cost
FEATURE_EXPERIMENT = EXPERIMENTS["flowers-resnet18"]  # the lab whose frozen backbone the feature cache serves
DECODE_EXPERIMENT = EXPERIMENTS["flowers"]  # the lab whose JPEG folder the decode cache serves


@dataclass(frozen=True)
class Mode:
    name: str
    archs: tuple[str, ...] | None  # None: every registered architecture
    max_image_size: int | None  # larger natural sizes are benchmarked at this size; None: the natural size
    batch_size: int  # images per step in every loop
    repeats: int  # timed epochs after the warm-up epoch (and timed calls); their median is reported
    epoch_flops: float  # training work aimed at per epoch, which sets each architecture's steps per epoch
    min_steps: int  # steps per epoch, at least and at most
    max_steps: int
    matmul_size: int  # side of the float32 matmul that measures the peak
    feature_arch: str  # the frozen-backbone model
    feature_images: tuple[int, int]  # (train, val) images of the feature-cache epochs: the lab's 3242:1000, smaller
    pipeline_images: int  # JPEGs written for the data pipeline
    pipeline_image_size: int  # the side they are decoded to
    command_repeats: int  # whole default runs (and bare imports) per framework; the median is reported
    command_epochs: int  # epochs of each 32-px command-line run (the first is the warm-up)
    command_archs: tuple[str, ...] | None = None  # the 32-px runs' architectures; None: every registered one
    default_epochs: int | None = None  # the default run's epochs; None: the default run as a user starts it
    latency: LatencyPlan = DEFAULT_PLAN  # the inference latency table's batches and repeats
    # The latency tasks join the training workers (smoke: one process per framework, not two; it cannot set the
    # threads then, which TensorFlow fixes when it starts, and its numbers mean nothing anyway)
    latency_with_training: bool = False


class _LabSettings(TypedDict):
    archs: tuple[str, ...] | None
    batch_size: int
    min_steps: int
    matmul_size: int
    feature_arch: str
    pipeline_image_size: int


# both labs name their architecture and their image size (shared.run.experiments.EXPERIMENTS)
assert FEATURE_EXPERIMENT.archs is not None and DECODE_EXPERIMENT.image_size is not None
# What the full and the quick mode share: every architecture, the labs' batch, their JPEGs at the flowers lab's size
_LAB_SETTINGS = _LabSettings(archs=None, batch_size=32, min_steps=3, matmul_size=2048,
                             feature_arch=FEATURE_EXPERIMENT.archs[0],
                             pipeline_image_size=DECODE_EXPERIMENT.image_size)
MODES = {
    "full": Mode("full", max_image_size=None, repeats=3, epoch_flops=2e12, max_steps=64, feature_images=(320, 96),
                 pipeline_images=500, command_repeats=3, command_epochs=4, **_LAB_SETTINGS),
    "quick": Mode("quick", max_image_size=64, repeats=5, epoch_flops=100e9, max_steps=32, feature_images=(96, 32),
                  pipeline_images=160, command_repeats=1, command_epochs=3,
                  latency=LatencyPlan(min_calls=20, min_seconds=0.2, max_seconds=3.0, floor_calls=3), **_LAB_SETTINGS),
    # --smoke: the whole path through both workers in seconds, for the tests; its numbers mean nothing
    "smoke": Mode("smoke", archs=("cifar_cnn_max",), max_image_size=32, batch_size=4, repeats=1, epoch_flops=0.0,
                  min_steps=2, max_steps=2, matmul_size=256, feature_arch="cifar_cnn_max", feature_images=(8, 4),
                  pipeline_images=6, pipeline_image_size=32, command_repeats=1, command_epochs=2,
                  command_archs=("cifar_cnn_max",), default_epochs=2,
                  latency=LatencyPlan(warmup_calls=1, min_calls=2, min_seconds=0.0, max_calls=2, max_seconds=0.0,
                                      floor_calls=1), latency_with_training=True),
}


def natural_image_size(arch: str) -> int:
    """The size a lab trains ``arch`` at; the digits' size for an architecture that no lab names."""
    for experiment in EXPERIMENTS.values():
        if experiment.archs and arch in experiment.archs and experiment.image_size:
            return experiment.image_size
    return DIGITS_IMAGE_SIZE


def bench_image_size(arch: str, mode: Mode) -> int:
    """The natural size, or the mode's cap rounded down to a size the architecture accepts."""
    size = natural_image_size(arch)
    if mode.max_image_size is None or size <= mode.max_image_size:
        return size
    entry = ARCHITECTURES[arch]
    return max(entry.min_image_size, mode.max_image_size - mode.max_image_size % entry.image_size_multiple)


def steps_per_epoch(arch: str, image_size: int, mode: Mode) -> int:
    """Enough steps for ``mode.epoch_flops`` of work, within the mode's bounds: many for the small CIFAR CNNs,
    whose steps are short enough for the loop's own overhead to show, few for the 224-pixel ones."""
    step = train_step_flops(build_spec(arch, CLASSES, image_size), mode.batch_size)
    return min(mode.max_steps, max(mode.min_steps, math.ceil(mode.epoch_flops / step)))


def plan(mode: Mode) -> dict[str, list[dict]]:
    """Each framework's tasks, in the order its worker runs them."""
    archs = mode.archs or tuple(ARCHITECTURES)
    loops = []
    for arch in archs:
        size = bench_image_size(arch, mode)
        loops.append({"arch": arch, "classes": CLASSES, "image_size": size, "batch_size": mode.batch_size,
                      "steps": steps_per_epoch(arch, size, mode), "repeats": mode.repeats})
    feature_size = bench_image_size(mode.feature_arch, mode)
    trainable = FEATURE_EXPERIMENT.trainable
    assert trainable is not None  # the lab trains its head only
    first_trainable = first_trainable_layer(build_spec(mode.feature_arch, CLASSES, feature_size), trainable)
    feature = {"arch": mode.feature_arch, "classes": CLASSES, "image_size": feature_size,
               "batch_size": mode.batch_size, "trainable": list(trainable), "first_trainable": first_trainable,
               "train_images": mode.feature_images[0], "val_images": mode.feature_images[1], "repeats": mode.repeats}
    common = ([{"task": "matmul", "args": {"size": mode.matmul_size, "repeats": mode.repeats}}]
              + [{"task": task, "args": loop} for loop in loops for task in ("cnnlab_loop", "reference_loop")]
              + [{"task": "feature_cache", "args": feature}])
    pipeline = {"images": mode.pipeline_images, "classes": CLASSES, "image_size": mode.pipeline_image_size,
                "batch_size": mode.batch_size, "repeats": mode.repeats}
    return {"torch": common + [{"task": "data_pipeline", "args": pipeline}], "tf": common}


def machine() -> dict:
    """The CPU's model and core count, the OS and Python: what the numbers were measured on."""
    model = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            model = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), model)
    except OSError:
        pass
    return {"cpu": model, "cores": os.cpu_count(), "os": platform.platform(), "python": platform.python_version()}


def _results(worker: dict, task: str) -> list[dict]:
    return [entry for entry in worker["results"] if entry["task"] == task]


def _loop_figures(cnnlab: dict, reference: dict, steps: int, flops_per_step: int, peak: float) -> dict:
    # fit validates one image per epoch; that time, measured alone, comes off, so both loops time training steps only
    validation = float(np.median(cnnlab["validation_seconds"]))
    step = (steady_seconds(cnnlab["epoch_seconds"]) - validation) / steps
    return {"cnnlab_step_seconds": step, "reference_step_seconds": steady_seconds(reference["epoch_seconds"]) / steps,
            "first_epoch_seconds": cnnlab["epoch_seconds"][0], "flops_vs_peak": flops_per_step / step / peak}


def _training(workers: dict[str, dict], peak: float) -> list[dict]:
    """Per architecture, and in it per framework: the cnnlab loop's and the reference loop's seconds per step."""
    loops = {framework: list(zip(_results(workers[framework], "cnnlab_loop"),
                                 _results(workers[framework], "reference_loop"))) for framework in FRAMEWORKS}
    rows = []
    for index, (first, _) in enumerate(loops["torch"]):
        args = first["args"]
        spec = build_spec(args["arch"], args["classes"], args["image_size"])
        row = {"arch": args["arch"], "image_size": args["image_size"], "batch_size": args["batch_size"],
               "steps": args["steps"], "flops_per_step": train_step_flops(spec, args["batch_size"])}
        for framework in FRAMEWORKS:
            cnnlab, reference = loops[framework][index]
            assert cnnlab["args"] == reference["args"] == args, f"{framework}: {cnnlab['args']} against {args}"
            row[framework] = _loop_figures(cnnlab["result"], reference["result"], args["steps"],
                                           row["flops_per_step"], peak)
        rows.append(row)
    return rows


def _feature_cache(worker: dict) -> dict:
    entry = _results(worker, "feature_cache")[0]
    result = entry["result"]
    full, head = steady_seconds(result["full_epoch_seconds"]), steady_seconds(result["head_epoch_seconds"])
    epochs = FEATURE_EXPERIMENT.epochs
    return {**entry["args"], "experiment": FEATURE_EXPERIMENT.name, "full_epoch_seconds": full,
            "feature_seconds": result["feature_seconds"],
            "head_epoch_seconds": head, "run_epochs": epochs, "epoch_speedup": full / head,
            "run_speedup": epochs * full / (result["feature_seconds"] + epochs * head)}


def _data_pipeline(worker: dict) -> dict:
    entry = _results(worker, "data_pipeline")[0]
    result = entry["result"]
    seed, cnnlab = steady_seconds(result["seed_epoch_seconds"]), steady_seconds(result["cnnlab_epoch_seconds"])
    epochs = DECODE_EXPERIMENT.epochs
    return {**entry["args"], "seed_epoch_seconds": seed, "cnnlab_epoch_seconds": cnnlab,
            "cnnlab_decode_seconds": result["cnnlab_decode_seconds"],
            "cnnlab_load_seconds": result["cnnlab_load_seconds"], "run_epochs": epochs,
            "epoch_speedup": seed / cnnlab,
            "first_run_speedup": epochs * seed / (result["cnnlab_decode_seconds"] + epochs * cnnlab)}


def summarize(workers: dict[str, dict]) -> dict:
    """Every figure and ratio from the two workers' raw seconds."""
    matmuls = {framework: _results(workers[framework], "matmul")[0] for framework in FRAMEWORKS}
    # A peak is the best the machine did: other work on it can only slow a repeat down, so the fastest one counts.
    peaks = {framework: 2 * entry["args"]["size"] ** 3 / min(entry["result"]["seconds"])
             for framework, entry in matmuls.items()}
    # The machine's peak is the faster framework's matmul: each step is measured against what the CPU can do.
    training = _training(workers, max(peaks.values()))
    features = {framework: _feature_cache(workers[framework]) for framework in FRAMEWORKS}
    pipeline = _data_pipeline(workers["torch"])
    ratios = {
        "cnnlab_vs_reference": {framework: {row["arch"]: row[framework]["cnnlab_step_seconds"]
                                            / row[framework]["reference_step_seconds"] for row in training}
                                for framework in FRAMEWORKS},
        "keras_vs_torch": {row["arch"]: row["tf"]["cnnlab_step_seconds"] / row["torch"]["cnnlab_step_seconds"]
                           for row in training},
        "flops_vs_peak": {framework: {row["arch"]: row[framework]["flops_vs_peak"] for row in training}
                          for framework in FRAMEWORKS},
        "feature_cache_speedup": {framework: {"epoch": features[framework]["epoch_speedup"],
                                              "run": features[framework]["run_speedup"]} for framework in FRAMEWORKS},
        "decode_cache_speedup": {"epoch": pipeline["epoch_speedup"], "first_run": pipeline["first_run_speedup"]},
    }
    return {"peak": {"matmul_size": matmuls["torch"]["args"]["size"], "flops_per_second": peaks},
            "training": training, "feature_cache": features, "data_pipeline": pipeline, "ratios": ratios}


def latency_plan(mode: Mode, threads: int | None) -> dict[str, list[dict]]:
    """Each framework's latency tasks: the mode's architectures at their benchmark sizes."""
    archs = mode.archs or tuple(ARCHITECTURES)
    return bench_latency.plan({arch: bench_image_size(arch, mode) for arch in archs}, CLASSES, threads, mode.latency)


def build_report(mode: Mode, device: str, workers: dict[str, dict] | None, commands: dict | None, seconds: float,
                 latency: dict[str, dict] | None = None) -> dict:
    """Everything the JSON holds: where and when, the settings, the figures and ratios, and the raw timings;
    ``workers`` and ``commands`` are None with ``--latency-only``, ``latency`` (the latency workers) is None where
    the training workers ran the latency tasks too."""
    report: dict[str, Any] = {"mode": mode.name, "date": time.strftime("%Y-%m-%d %H:%M %Z"), "seconds": seconds,
              "machine": machine(), "device": device, "versions": package_versions(), "settings": asdict(mode)}
    if workers is not None:
        report.update(devices={framework: workers[framework]["device"] for framework in FRAMEWORKS},
                      **summarize(workers), commands=commands)
    latency_workers = latency or workers
    assert latency_workers is not None  # the training workers ran, or the latency workers did (main), or both
    report["latency"] = bench_latency.summarize(latency_workers)
    report["devices"] = report.get("devices") or report["latency"]["devices"]
    report["workers"] = workers
    if latency is not None:
        report["latency_workers"] = latency
    return report


def _workers(tasks: dict[str, list[dict]], device: str, folder: Path, threads: int | None = None,
             name: str = "") -> dict[str, dict]:
    return {framework: run_worker_process(framework, tasks[framework], device, folder, threads, name=name)
            for framework in FRAMEWORKS}


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(prog="python -m shared.bench", description="How fast cnnlab trains, as ratios "
                                     "measured in one run, and how fast its models infer in every runtime: tables "
                                     "on stdout, every figure in a JSON file.")
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="few steps, 224-px models at 64 px (about 14 minutes "
                      "on a quiet 2-core CPU); the default is the full benchmark at the natural sizes")
    size.add_argument("--smoke", action="store_true", help="a few steps of one tiny model, for the tests; the "
                      "numbers mean nothing")
    parser.add_argument("--device", choices=DEVICES, default="auto",
                        help="passed to both workers; auto uses CUDA when the framework sees a GPU")
    parser.add_argument("--threads", type=POSITIVE_WHOLE, default=1, help="inference threads of the latency table, in "
                        "the native models and every runtime (default 1, as a phone runs a model)")
    parser.add_argument("--latency-only", action="store_true", help="measure the inference latency table alone")
    parser.add_argument("--serve", action="store_true", help="measure serve instead: cold start, memory, latency "
                        "and throughput of each framework's model and exported runtime behind HTTP, against the "
                        "HTTP ceiling (a few minutes)")
    parser.add_argument("--json", type=Path, default=Path("bench.json"), help="where to write the results")
    args = parse_or_exit(parser, argv)
    if args.serve:
        from shared.measure import serving

        serving.run(1.0 if args.smoke else 5.0, args.json)
        return 0
    mode = MODES["smoke" if args.smoke else "quick" if args.quick else "full"]
    started = time.perf_counter()
    latency_tasks = latency_plan(mode, args.threads)
    tasks = {} if args.latency_only else plan(mode)
    together = mode.latency_with_training and not args.latency_only
    if together:
        tasks = {framework: tasks[framework] + latency_tasks[framework] for framework in FRAMEWORKS}
    count = sum(map(len, tasks.values())) + (0 if together else sum(map(len, latency_tasks.values())))
    print(f"shared.bench: {mode.name} mode, {count} tasks; PyTorch's worker, then TensorFlow's", file=sys.stderr,
          flush=True)
    workers = commands = latency = None
    with tempfile.TemporaryDirectory(prefix="cnnlab-bench-") as folder:
        try:
            if not args.latency_only:
                workers = _workers(tasks, args.device, Path(folder))
            if not together:
                print(f"shared.bench: inference latency, {args.threads} thread{'s' if args.threads > 1 else ''}",
                      file=sys.stderr, flush=True)
                latency = _workers(latency_tasks, args.device, Path(folder), args.threads, name="-latency")
        except WorkerFailed as error:
            print(f"shared.bench: error: {error}", file=sys.stderr)
            return error.status
        if not args.latency_only:
            print("shared.bench: whole commands: the default run, then every architecture at 32 px",
                  file=sys.stderr, flush=True)
            commands = whole_commands.measure(mode.command_archs or tuple(ARCHITECTURES), Path(folder),
                                         mode.command_repeats, mode.command_epochs, mode.default_epochs)
    result = build_report(mode, args.device, workers, commands, time.perf_counter() - started, latency)
    print(format_report(result))
    with atomic_path(args.json) as part:
        part.write_text(json.dumps(result, indent=1))
    print(f"wrote {args.json}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

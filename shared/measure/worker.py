"""The framework-neutral half of a benchmark worker (``python -m cnnlab_torch.bench`` / ``cnnlab_tf.bench``).

``shared.bench.main`` starts one worker process per framework, so torch and TensorFlow never share a process, and
hands it a job file: the device and a list of tasks. The worker runs them in order and writes their raw timings
(seconds, never ratios) to a result file; the orchestrator turns them into ratios. The tasks that only need the
backend contract (``shared.training.backend``) live here, written once: the cnnlab loop and the frozen-feature cache.
A backend's ``bench`` module adds the framework's own tasks: the matmul peak and the framework's reference loop.

Every loop is timed in epochs: the first (tracing, allocation, warm-up) is recorded but left out, and the median
of the following ones is the steady state.
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
import subprocess
import time
from dataclasses import replace
from pathlib import Path
from typing import Any
from collections.abc import Callable

import numpy as np

from shared.formats import history as keys
from shared.training.backend import Backend
from shared.training.config import TrainConfig
from shared.data.dataset import Dataset
from shared.util.errors import EXIT_USAGE, UsageError
from shared.util.flags import OneLineParser, parse_or_exit
from shared.util.processes import process_group
from shared.model.init import initial_weights
from shared.model.registry import build_spec
from shared.model.specs import ModelSpec

SEED = 0  # initial weights, synthetic pixels and labels, batch order
LOOP_VAL_IMAGES = 1  # fit validates every epoch; one image keeps that small, and its time is subtracted
MIN_REPEAT_SECONDS = 0.2  # a timed repeat of a short call runs it back to back until it lasts at least this long
SOURCE_JPEG_SIZE = (500, 375)  # width, height: the flowers photos' typical size


def steady_seconds(epoch_seconds: list[float]) -> float:
    """The median epoch after the first, which traces, allocates and warms caches."""
    assert len(epoch_seconds) >= 2, f"need a warm-up epoch and at least one timed epoch, got {epoch_seconds}"
    return float(np.median(epoch_seconds[1:]))


def call_seconds(call: Callable[[], Any], repeats: int) -> list[float]:
    """Seconds per call of ``call``, which must wait for its own result (a sync), in each of ``repeats`` timed
    repeats after one warm-up call. Short calls run back to back within a repeat, so the clock's and the sync's
    cost do not count."""
    started = time.perf_counter()
    call()
    calls = max(1, int(MIN_REPEAT_SECONDS / max(time.perf_counter() - started, 1e-9)))
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        for _ in range(calls):
            call()
        timings.append((time.perf_counter() - started) / calls)
    return timings


def synthetic_data(image_size: int, classes: int, train_images: int, val_images: int) -> tuple[Dataset, Dataset]:
    """Random uint8 pixels and labels: the steps cost the same whatever the pixels are."""
    rng = np.random.default_rng(SEED)
    count = train_images + val_images
    images = rng.integers(0, 256, (count, image_size, image_size, 3), dtype=np.uint8)
    labels = rng.integers(0, classes, count).astype(np.int64)
    data = Dataset("synthetic", images, labels, tuple(f"class{index}" for index in range(classes)))
    return data.subset(np.arange(train_images)), data.subset(np.arange(train_images, count))


def bench_config(arch: str, batch_size: int, repeats: int) -> TrainConfig:
    """The labs' optimizer settings, and one warm-up epoch plus ``repeats`` timed ones."""
    return TrainConfig(arch=arch, epochs=1 + repeats, batch_size=batch_size, seed=SEED)


def seeded_model(backend: Backend, arch: str, classes: int, image_size: int, precision: str) -> tuple[ModelSpec, Any]:
    """The registered spec and its model, holding the seeded initial weights both frameworks start from."""
    spec = build_spec(arch, classes, image_size)
    model = backend.build_model(spec, precision)
    backend.set_weights(model, spec, initial_weights(spec, SEED))
    return spec, model


@contextlib.contextmanager
def quiet():
    """Swallow the engine's per-epoch lines: the bench prints its own progress. Its progress bar (stderr) stays,
    so the loop is timed as a user runs it."""
    with contextlib.redirect_stdout(io.StringIO()):
        yield


def time_cnnlab_loop(backend: Backend, arch: str, classes: int, image_size: int, batch_size: int, steps: int,
                     repeats: int) -> dict:
    """cnnlab's own ``fit`` for 1 + ``repeats`` epochs of ``steps`` batches. An epoch's seconds include validating
    one image; ``validation_seconds``, that validation alone in each repeat, is for the orchestrator to subtract."""
    config = bench_config(arch, batch_size, repeats)
    _, model = seeded_model(backend, arch, classes, image_size, config.precision)
    train, val = synthetic_data(image_size, classes, steps * batch_size, LOOP_VAL_IMAGES)
    optimizer = backend.make_optimizer(model, config)
    with quiet():
        history = backend.fit(model, optimizer, train, val, config)
    # What fit's validation costs per epoch: the logits of the validation image (the metrics are NumPy, negligible)
    validation = call_seconds(lambda: backend.predict_logits(model, val.images, batch_size), repeats)
    return {"epoch_seconds": [record[keys.SECONDS] for record in history], "validation_seconds": validation}


def time_feature_cache(backend: Backend, arch: str, classes: int, image_size: int, batch_size: int,
                       trainable: list[str], first_trainable: str, train_images: int, val_images: int,
                       repeats: int) -> dict:
    """A frozen-backbone epoch two ways, validation included as in a run: the full model on every image
    (``--no-feature-cache``), and the head on backbone features computed once beforehand (the cache's way)."""
    config = bench_config(arch, batch_size, repeats)
    train, val = synthetic_data(image_size, classes, train_images, val_images)

    spec, model = seeded_model(backend, arch, classes, image_size, config.precision)
    backend.freeze(model, spec, tuple(trainable))
    with quiet():
        full = backend.fit(model, backend.make_optimizer(model, config), train, val, config)

    spec, model = seeded_model(backend, arch, classes, image_size, config.precision)
    backend.freeze(model, spec, tuple(trainable))
    optimizer = backend.make_optimizer(model, config)
    started = time.perf_counter()
    train_features, val_features = (
        backend.backbone_features(model, spec, first_trainable, part.images, batch_size, lambda count: None)
        for part in (train, val))
    feature_seconds = time.perf_counter() - started  # computing them; a later run loads them from disk instead
    head = backend.head_model(model, spec, first_trainable)
    with quiet():
        cached = backend.fit(head, optimizer, replace(train, images=train_features),
                             replace(val, images=val_features), config)
    return {"full_epoch_seconds": [record[keys.SECONDS] for record in full], "feature_seconds": feature_seconds,
            "head_epoch_seconds": [record[keys.SECONDS] for record in cached]}


def write_jpeg_folder(root: Path, count: int, classes: int) -> Path:
    """``count`` JPEGs of the flowers photos' size in ``classes`` class folders. Smooth colour fields with a little
    noise compress to about 60 kB, as photos of that size do, so decoding costs what it costs on real data."""
    from PIL import Image  # only this task writes images

    rng = np.random.default_rng(SEED)
    width, height = SOURCE_JPEG_SIZE
    for index in range(count):
        folder = Path(root) / f"class{index % classes}"
        folder.mkdir(parents=True, exist_ok=True)
        coarse = Image.fromarray(rng.integers(0, 256, (height // 25, width // 25, 3), dtype=np.uint8))
        smooth = np.asarray(coarse.resize((width, height), Image.Resampling.BICUBIC), dtype=np.int16)
        noisy = np.clip(smooth + rng.normal(0, 8, smooth.shape).astype(np.int16), 0, 255).astype(np.uint8)
        Image.fromarray(noisy).save(folder / f"{index:05d}.jpg", quality=90)
    return Path(root)


def worker_parser(framework: str) -> OneLineParser:
    """``python -m cnnlab_<framework>.bench``'s flags; the backend's module parses them before it imports its
    framework, so that a mistake is answered at once."""
    parser = OneLineParser(prog=f"python -m cnnlab_{framework}.bench",
                           description="A benchmark worker; started by python -m shared.bench and python -m "
                                       "shared.compare.")
    parser.add_argument("--job", type=Path, required=True, help="JSON: {'device': ..., 'tasks': [...], "
                        "'threads': N (optional)}")
    parser.add_argument("--out", type=Path, required=True, help="where to write the timings (JSON)")
    return parser


def run_worker(backend: Backend, tasks: dict[str, Callable[..., dict]], argv: list[str] | None = None,
               set_threads: Callable[[int], None] | None = None) -> int:
    """The worker's command line: run the job file's tasks on its device, write their timings as JSON. A job with
    ``threads`` has the framework use that many threads (``set_threads``, before it starts: TensorFlow fixes its
    thread pools then)."""
    parser = worker_parser(backend.framework)
    args = parse_or_exit(parser, argv)
    try:
        job = json.loads(args.job.read_text())
    except (OSError, ValueError) as error:
        print(f"{parser.prog}: error: --job {args.job}: {error}; pass the job file python -m shared.bench writes",
              file=sys.stderr)
        return EXIT_USAGE
    tasks = {"cnnlab_loop": lambda **kwargs: time_cnnlab_loop(backend, **kwargs),
             "feature_cache": lambda **kwargs: time_feature_cache(backend, **kwargs), **tasks}
    if job.get("threads") is not None:
        assert set_threads is not None, f"the {backend.framework} worker cannot set its threads"
        set_threads(int(job["threads"]))
    try:
        device = backend.select_device(job["device"])
    except UsageError as error:  # --device cuda without a GPU: one line, as the train CLIs print it
        print(f"{parser.prog}: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    results = []
    for task in job["tasks"]:
        label = f"[{backend.framework}] {task['task']} " + " ".join(f"{key}={value}" for key, value in
                                                                    task["args"].items())
        print(f"{label} ...", file=sys.stderr, flush=True)
        started = time.perf_counter()
        results.append({**task, "result": tasks[task["task"]](**task["args"])})
        print(f"{label}: {time.perf_counter() - started:.1f}s", file=sys.stderr, flush=True)
    args.out.write_text(json.dumps({"framework": backend.framework, "version": backend.version, "device": device,
                                    "threads": job.get("threads"), "results": results}, indent=1))
    return 0


# The parent's side of the protocol: a worker per framework, each in a process of its own

def run_worker_process(framework: str, tasks: list[dict], device: str, folder: Path, threads: int | None = None,
                       capture: bool = False, name: str = "") -> dict:
    """One framework's worker in a process of its own, with ``threads`` threads (None: the framework's default). Its
    progress lines pass through to this terminal, or with ``capture`` are kept and shown only if it fails."""
    job, out = folder / f"{framework}{name}-job.json", folder / f"{framework}{name}-result.json"
    job.write_text(json.dumps({"device": device, "threads": threads, "tasks": tasks}))
    command = [sys.executable, "-m", f"cnnlab_{framework}.bench", "--job", str(job), "--out", str(out)]
    returncode, stderr = run_stopped_with_us(command, capture)
    if returncode != 0:
        output = f":\n{stderr[-3000:]}" if capture else ""
        raise WorkerFailed(f"the {framework} worker ({' '.join(command[1:3])}) failed with exit status "
                           f"{returncode}{output}", returncode)
    return json.loads(out.read_text())


def run_stopped_with_us(command: list[str], capture: bool) -> tuple[int, str]:
    """Run ``command`` in a process group of its own; (its exit status, its stderr when ``capture``). Whatever ends
    this process's wait (Ctrl-C, SIGTERM as a ``StopRequested``, any error), the whole group is killed first, so
    no worker, nor anything it started, outlives the command that needed it."""
    pipe = subprocess.PIPE if capture else None
    with process_group(command, stdout=pipe, stderr=pipe, text=True) as process:
        _, stderr = process.communicate()
    return process.returncode, stderr or ""


class WorkerFailed(Exception):
    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = status

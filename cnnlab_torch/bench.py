"""The PyTorch benchmark worker, started by ``python -m shared.bench`` in a process of its own. Mirrors
``cnnlab_tf.bench``; the tasks both frameworks share (the cnnlab loop, the frozen-feature cache) are in
``shared.measure.worker``, and what a model costs to train and serve (memory, latency) in
``shared.measure.footprint_worker``. Only PyTorch has ``time_data_pipeline``: the seed labs' image pipeline is
torchvision's."""

from __future__ import annotations

if __name__ == "__main__":  # the flags first: a mistake is answered before the framework loads (and logs)
    from shared.measure.worker import worker_parser
    from shared.util.flags import parse_or_exit

    parse_or_exit(worker_parser("torch"), None)

import contextlib
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from cnnlab_torch.backend import BACKEND

from cnnlab_torch.engine import gather_batch
from cnnlab_torch.optimizer import make_optimizer
from cnnlab_torch.runtime import mobile_runner
from shared.measure.worker import (bench_config, call_seconds, run_worker, seeded_model, synthetic_data,
                                          write_jpeg_folder)
from shared.measure.footprint_worker import WorkerKit, footprint_tasks
from shared.measure.memory import DevicePeak
from shared.data.dataset import batch_indices
from shared.data.image_folder import load_image_folder

SEED_LOADER_WORKERS = 2  # the seed flowers lab's DataLoader(num_workers=2)


def _synchronize() -> None:
    """Wait for the GPU's queued work before the clock is read; CPU ops have finished when they return."""
    if BACKEND.device.type == "cuda":
        torch.cuda.synchronize()


def time_matmul(size: int, repeats: int) -> dict:
    """Seconds per float32 ``size`` x ``size`` matmul in each repeat: the machine's peak for the FLOP/s ratios."""
    a, b = (torch.randn(size, size, device=BACKEND.device) for _ in range(2))

    def matmul() -> None:
        a @ b
        _synchronize()

    return {"seconds": call_seconds(matmul, repeats)}


def time_reference_loop(arch: str, classes: int, image_size: int, batch_size: int, steps: int, repeats: int) -> dict:
    """PyTorch's bare loop on the same model, data and Adam as the cnnlab loop: float32 batches already on the
    device, zero_grad / forward / loss / backward / step, and no host sync until the epoch ends."""
    config = bench_config(arch, batch_size, repeats)
    _, model = seeded_model(BACKEND, arch, classes, image_size, config.precision)
    optimizer = make_optimizer(model, config)  # the same torch.optim.Adam (fused) as the cnnlab loop
    train, _ = synthetic_data(image_size, classes, steps * batch_size, 0)
    device = BACKEND.device
    batches = [(torch.from_numpy(train.images[indices]).to(device, torch.float32),
                torch.from_numpy(train.labels[indices]).to(device))
               for indices in batch_indices(len(train.labels), batch_size)]
    model.train()
    epoch_seconds = []
    for _ in range(config.epochs):
        started = time.perf_counter()
        for images, labels in batches:
            optimizer.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(images), labels)
            loss.backward()
            optimizer.step()
        loss.item()  # waits for the epoch's last step, on any device
        epoch_seconds.append(time.perf_counter() - started)
    return {"epoch_seconds": epoch_seconds}


def _seed_pipeline_epochs(root: Path, image_size: int, batch_size: int, repeats: int) -> list[float]:
    """The seed lab's pipeline: ImageFolder decodes and resizes every JPEG again in every epoch, in DataLoader
    worker processes. (The seed also normalised there; cnnlab normalises inside the model's step instead, so that
    work is left out on both sides.)"""
    from torchvision import datasets, transforms  # the worker for this one task; no cnnlab code needs torchvision

    dataset = datasets.ImageFolder(str(root), transforms.Compose([transforms.Resize((image_size, image_size)),
                                                                  transforms.ToTensor()]))
    device = BACKEND.device
    loader = torch.utils.data.DataLoader(dataset, batch_size, shuffle=True, num_workers=SEED_LOADER_WORKERS,
                                         pin_memory=device.type == "cuda")
    epoch_seconds = []
    for _ in range(1 + repeats):
        started = time.perf_counter()
        for images, labels in loader:
            images, labels = images.to(device, non_blocking=True), labels.to(device, non_blocking=True)
        _synchronize()
        epoch_seconds.append(time.perf_counter() - started)
    return epoch_seconds


def _cnnlab_pipeline(root: Path, cache_dir: Path, image_size: int, batch_size: int, repeats: int) -> dict:
    """cnnlab's: decode once into the uint8 cache; a run loads the cache and puts it on the device; each step
    gathers its batch there and converts it to float32, as ``cnnlab_torch.engine.train_steps`` does."""
    started = time.perf_counter()
    load_image_folder(root, image_size, cache_dir)
    decode_seconds = time.perf_counter() - started
    started = time.perf_counter()
    data = load_image_folder(root, image_size, cache_dir)  # from the cache, as every later run reads it
    device = BACKEND.device
    images, labels = torch.from_numpy(data.images).to(device), torch.from_numpy(data.labels).to(device)
    _synchronize()
    load_seconds = time.perf_counter() - started
    epoch_seconds = []
    for epoch in range(1 + repeats):
        started = time.perf_counter()
        for indices in batch_indices(len(data.labels), batch_size, 0, epoch):
            batch_images, _ = gather_batch(images, labels, torch.from_numpy(indices).to(device))
            batch_images.to(torch.float32)  # the step's input, delivered and dropped
        _synchronize()
        epoch_seconds.append(time.perf_counter() - started)
    return {"decode_seconds": decode_seconds, "load_seconds": load_seconds, "epoch_seconds": epoch_seconds}


def time_data_pipeline(images: int, classes: int, image_size: int, batch_size: int, repeats: int) -> dict:
    """An epoch of batches delivered to the device from a folder of JPEGs, the seed lab's way and cnnlab's."""
    with tempfile.TemporaryDirectory(prefix="cnnlab-bench-") as folder:
        root = write_jpeg_folder(Path(folder) / "jpegs", images, classes)
        seed = _seed_pipeline_epochs(root, image_size, batch_size, repeats)
        cnnlab = _cnnlab_pipeline(root, Path(folder) / "decoded", image_size, batch_size, repeats)
    return {"seed_epoch_seconds": seed, **{f"cnnlab_{key}": value for key, value in cnnlab.items()}}


def set_threads(threads: int) -> None:
    """``threads`` for each operator, and one inter-op thread, as onnxruntime's sessions are set up."""
    torch.set_num_threads(threads)
    with contextlib.suppress(RuntimeError):  # settable only before any inter-op work has started
        torch.set_num_interop_threads(1)


def _reset_cuda_peak() -> None:
    if BACKEND.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(BACKEND.device)


def _cuda_peak() -> int | None:
    return int(torch.cuda.max_memory_allocated(BACKEND.device)) if BACKEND.device.type == "cuda" else None


KIT = WorkerKit(BACKEND, DevicePeak(_reset_cuda_peak, _cuda_peak, "torch.cuda.max_memory_allocated"),
                {"executorch": mobile_runner})


def main(argv: list[str] | None = None) -> int:
    return run_worker(BACKEND, {"matmul": time_matmul, "reference_loop": time_reference_loop,
                                "data_pipeline": time_data_pipeline, **footprint_tasks(KIT)}, argv, set_threads)


if __name__ == "__main__":
    sys.exit(main())

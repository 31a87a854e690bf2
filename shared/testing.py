"""Helpers the backends' test suites share: what a finished run directory must hold, and the small input sizes
that keep per-spec tests fast."""

from __future__ import annotations

import json
from pathlib import Path

from shared.onnx_check import describe_signature
from shared.registry import ARCHITECTURES
from shared.weights_io import read_meta


def small_image_size(arch: str) -> int:
    """Twice the smallest input, so every spatial map (and the flatten before a Linear) is bigger than 1x1."""
    return 2 * ARCHITECTURES[arch].min_image_size


def check_run_directory(run_dir: Path, framework: str, checkpoint_name: str, epochs: int) -> dict:
    """Assert a completed run wrote every artefact; return its metrics."""
    metrics = json.loads((run_dir / "metrics.json").read_text())
    for key in ("framework", "arch", "dataset", "classes", "params_trainable", "seconds", "history"):
        assert key in metrics, f"metrics.json lacks {key}"
    assert metrics["framework"] == framework and metrics["status"] == "complete"
    assert len(metrics["history"]) == epochs
    for record in metrics["history"]:
        assert {"train_loss", "train_acc", "val_loss", "val_acc"} <= record.keys(), record.keys()
    for name in ("split.json", checkpoint_name, "weights.npz", "model.onnx", "curves.png"):
        assert (run_dir / name).is_file(), f"{run_dir} lacks {name}"
    assert (run_dir / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert read_meta(run_dir / "weights.npz")["arch"] == metrics["arch"]
    classes = len(metrics["classes"])
    size = metrics["image_size"]
    assert describe_signature(run_dir / "model.onnx")["inputs"] == {"images": ["batch", size, size, 3]}
    assert describe_signature(run_dir / "model.onnx")["outputs"] == {"logits": ["batch", classes]}
    assert not [path for path in run_dir.iterdir() if "part" in path.name], "temporary files left behind"
    return metrics


def interrupting_backend(backend):
    """The backend with ``fit`` raising KeyboardInterrupt right after the first epoch was saved, as if Ctrl-C
    arrived during the second epoch."""
    import dataclasses

    def fit_then_interrupt(model, train, val, config, on_epoch_end):
        def save_then_stop(record):
            on_epoch_end(record)
            raise KeyboardInterrupt

        return backend.fit(model, train, val, config, save_then_stop)

    return dataclasses.replace(backend, fit=fit_then_interrupt)


def check_interrupted_run(run_dir: Path, checkpoint_name: str, stderr: str) -> None:
    """An interrupted run is marked so and keeps its finished epoch's files."""
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["status"] == "interrupted" and len(metrics["history"]) == 1
    assert (run_dir / checkpoint_name).is_file() and (run_dir / "weights.npz").is_file()
    assert not (run_dir / "model.onnx").exists(), "no export of an unfinished run"
    assert "keeps the 1 finished epoch" in stderr


def check_model_follows_spec(model_module, weights_module, arch: str) -> None:
    """A backend's model of ``arch``: per-layer shapes and trainable counts as the spec says, and the shared
    initial weights load and read back unchanged. ``*_module`` are a backend's ``model`` and ``weights``."""
    import numpy as np

    from shared import shapes
    from shared.init import initial_weights
    from shared.registry import build_spec

    spec = build_spec(arch, 5, small_image_size(arch))
    model = model_module.build_model(spec)
    images = np.random.default_rng(0).uniform(0, 255, (2, spec.image_size, spec.image_size, 3)).astype(np.float32)
    outputs = model_module.layer_outputs(model, spec, images)
    assert {name: value.shape[1:] for name, value in outputs.items()} == dict(shapes.output_shapes(spec))
    assert model_module.trainable_params_by_layer(model, spec) == shapes.trainable_params_by_layer(spec)
    weights = initial_weights(spec, seed=3)
    weights_module.set_weights(model, spec, weights)
    read_back = weights_module.get_weights(model, spec)
    assert all(np.array_equal(read_back[name], weights[name]) for name in weights)

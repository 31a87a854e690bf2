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

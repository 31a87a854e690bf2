"""--compile in PyTorch without a working Inductor (no C++ compiler, pytorch#92745): one warning, eager training."""

import numpy as np
import torch

from cnnlab_torch.backend import BACKEND
from cnnlab_torch.model import build_model
from cnnlab_torch.optimizer import make_optimizer
from shared.training.config import TrainConfig
from shared.data.dataset import Dataset
from shared.model.registry import build_spec


def test_compile_falls_back_to_eager_when_inductor_cannot_build(monkeypatch, capsys):
    def no_compiler(*args, **kwargs):
        raise RuntimeError("InvalidCxxCompiler: No working C++ compiler found")

    monkeypatch.setattr(torch, "compile", no_compiler)
    rng = np.random.default_rng(0)
    data = Dataset("random", rng.integers(0, 255, (8, 32, 32, 3), dtype=np.uint8), np.arange(8) % 3, ("a", "b", "c"))
    model = build_model(build_spec("cifar_cnn_max", 3, 32))
    config = TrainConfig(epochs=1, batch_size=4, compile=True)
    history = BACKEND.fit(model, make_optimizer(model, config), data, data, config)
    assert len(history) == 1 and np.isfinite(history[0]["train_loss"])
    warning = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning: --compile")]
    assert len(warning) == 1 and "InvalidCxxCompiler" in warning[0] and "training without it" in warning[0]

"""The running server on its own, with a stand-in model: a model that fails its warm-up is reported in one message
and never reported ready, and the port it held is free again after ``stop``."""

from __future__ import annotations

import urllib.error
import urllib.request

import numpy as np
import pytest

from shared.serving import server as serving
from shared.serving.app import ServedModel, Settings, create_app
from shared.util.errors import UsageError


def model(infer) -> ServedModel:
    return ServedModel("stand_in", infer, ("a", "b"), 4, "torch", "a stand-in", "test", "a stand-in model", None,
                       "no file")


def test_a_model_that_fails_its_warm_up_is_reported_and_never_ready():
    def infer(images: np.ndarray) -> np.ndarray:
        raise RuntimeError("the runtime cannot run this batch")

    app, _, state = create_app(model(infer), Settings(max_batch=2), "test")
    sock = serving.bind("127.0.0.1", 0)
    port = sock.getsockname()[1]
    running = serving.start(app, state, sock, f"http://127.0.0.1:{port}")
    try:
        with pytest.raises(UsageError, match="failed its warm-up.*cannot run this batch"):
            running.wait_ready(timeout=10)
        with pytest.raises(urllib.error.HTTPError) as answer:
            urllib.request.urlopen(f"{running.url}/v2/health/ready", timeout=5)
        assert answer.value.code == 503
    finally:
        running.stop()
    serving.bind("127.0.0.1", port).close()  # the port is free again: a restart can have it


def test_a_working_model_is_ready_after_its_warm_up():
    batches = []

    def infer(images: np.ndarray) -> np.ndarray:
        batches.append(len(images))
        return np.zeros((len(images), 2), np.float32)

    app, _, state = create_app(model(infer), Settings(max_batch=3), "test")
    sock = serving.bind("127.0.0.1", 0)
    with serving.start(app, state, sock, f"http://127.0.0.1:{sock.getsockname()[1]}") as running:
        running.wait_ready(timeout=10)
        assert urllib.request.urlopen(f"{running.url}/v2/health/ready", timeout=5).status == 200
    assert batches[:2] == [1, 3], "warmed up at batch 1 and at --max-batch"

"""Dynamic batching on its own: concurrent submissions share forward passes, each gets its own rows back, a pass
never exceeds the bound, and a failing pass fails only the requests that were in it."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from shared.serving.batcher import Batcher


def run(coroutine):
    return asyncio.run(coroutine)


def test_concurrent_requests_share_passes_and_get_their_own_rows():
    passes = []

    def infer(images: np.ndarray) -> np.ndarray:
        passes.append(len(images))
        return images.reshape(len(images), -1)[:, :1] * 2  # each row's first pixel, doubled: traceable

    async def scenario():
        batcher = Batcher(infer, max_batch=8, delay=0.05)
        batcher.start()
        inputs = [np.full((1 + index % 3, 1, 1, 3), index, np.float32) for index in range(6)]
        answers = await asyncio.gather(*(batcher.submit(images) for images in inputs))
        await batcher.stop()
        return inputs, answers

    inputs, answers = run(scenario())
    for images, answer in zip(inputs, answers):
        assert answer.shape == (len(images), 1) and np.all(answer == 2 * images[0, 0, 0, 0])
    assert sum(passes) == sum(len(images) for images in inputs)  # 12 images
    assert max(passes) <= 8 and len(passes) < 6, passes


def test_a_failing_pass_fails_its_requests_and_the_next_pass_still_runs():
    calls = []

    def infer(images: np.ndarray) -> np.ndarray:
        calls.append(len(images))
        if len(calls) == 1:
            raise RuntimeError("the model failed")
        return np.zeros((len(images), 2), np.float32)

    async def scenario():
        batcher = Batcher(infer, max_batch=4, delay=0.0)
        batcher.start()
        with pytest.raises(RuntimeError, match="the model failed"):
            await batcher.submit(np.zeros((1, 1, 1, 3), np.float32))
        answer = await batcher.submit(np.zeros((2, 1, 1, 3), np.float32))
        await batcher.stop()
        return answer

    assert run(scenario()).shape == (2, 2)


def test_stopping_answers_the_waiting_requests_and_refuses_new_ones():
    """A request in the running pass or still queued when the server stops hears ``Stopping`` (a 503), not an
    error from a closed inference thread, nothing waits for ever, and a later request is refused at once."""
    import threading

    from shared.serving.batcher import Stopping

    gate = threading.Event()

    def infer(images: np.ndarray) -> np.ndarray:
        gate.wait(10)  # the first pass is still running when the stop comes
        return np.zeros((len(images), 2), np.float32)

    async def scenario():
        batcher = Batcher(infer, max_batch=1, delay=0.0)
        batcher.start()
        first = asyncio.ensure_future(batcher.submit(np.zeros((1, 1, 1, 3), np.float32)))
        await asyncio.sleep(0.05)
        second = asyncio.ensure_future(batcher.submit(np.zeros((1, 1, 1, 3), np.float32)))
        await asyncio.sleep(0.05)
        threading.Timer(0.2, gate.set).start()  # the pass ends while stop() waits for the inference thread
        await batcher.stop()
        results = await asyncio.gather(first, second, return_exceptions=True)
        with pytest.raises(Stopping):
            await batcher.submit(np.zeros((1, 1, 1, 3), np.float32))
        return results

    first, second = run(scenario())
    assert isinstance(first, Stopping) and isinstance(second, Stopping)

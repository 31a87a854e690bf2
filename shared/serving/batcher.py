"""Dynamic batching: concurrent requests' images coalesced into one forward pass.

Each request is decoded and validated before it joins (``submit`` takes finished pixels), so a bad request can
never fail the others batched with it. One task gathers: it takes whatever is queued, up to ``max_batch`` images;
with ``delay`` above 0 it also waits up to that long after the first for the batch to fill, as Triton's
``max_queue_delay_microseconds`` does. The forward pass runs on one inference thread, off the event loop, so health
probes and uploads are answered while the model works; requests that arrive meanwhile form the next batch. That is
the whole gain: one pass over 32 images costs about what two passes over one cost.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from dataclasses import dataclass
from collections.abc import Callable

import numpy as np

Infer = Callable[[np.ndarray], np.ndarray]  # float32 [n, H, W, 3] pixels -> float32 [n, classes] logits


class Stopping(Exception):
    """The server is stopping: this request will not get a forward pass (HTTP 503)."""


@dataclass
class _Pending:
    images: np.ndarray
    answer: asyncio.Future


def _fail(items: list[_Pending], error: BaseException) -> None:
    """Every request in ``items`` not answered yet hears ``error``."""
    for item in items:
        if not item.answer.done():
            item.answer.set_exception(error)


class Batcher:
    def __init__(self, infer: Infer, max_batch: int, delay: float, observe_batch: Callable[[int], None] | None = None):
        self._infer, self._max_batch, self._delay = infer, max_batch, delay
        self._observe_batch = observe_batch
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self._waiting: list[_Pending] = []  # taken from the queue, not yet in a batch (it would overflow one)
        self._thread = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="cnnlab-infer")
        self._task: asyncio.Task | None = None
        self._stopped = False

    @property
    def depth(self) -> int:
        """Images waiting for a forward pass."""
        # asyncio.Queue keeps its items in a deque, _queue, that typeshed does not declare
        queued: list[_Pending] = list(self._queue._queue)  # type: ignore[attr-defined]
        return sum(len(item.images) for item in self._waiting) + sum(len(item.images) for item in queued)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._gather_forever())

    async def stop(self) -> None:
        """No more passes: the one running finishes, and every request still waiting hears ``Stopping``."""
        self._stopped = True
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        waiting = self._waiting + [self._queue.get_nowait() for _ in range(self._queue.qsize())]
        self._waiting = []
        _fail(waiting, Stopping())
        self._thread.shutdown(wait=True)

    async def submit(self, images: np.ndarray) -> np.ndarray:
        """The logits of ``images`` (at most ``max_batch`` of them), from a batch shared with other requests;
        ``Stopping`` once the server stops."""
        if self._stopped:
            raise Stopping
        answer = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Pending(images, answer))
        return await answer

    async def run_alone(self, images: np.ndarray) -> np.ndarray:
        """One forward pass of exactly these images on the inference thread (the warm-up's)."""
        return await asyncio.get_running_loop().run_in_executor(self._thread, self._infer, images)

    async def _gather_forever(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [self._waiting.pop(0) if self._waiting else await self._queue.get()]
            size = len(batch[0].images)
            deadline = loop.time() + self._delay
            while size < self._max_batch:
                item = self._next_now()
                if item is None and self._delay > 0 and loop.time() < deadline:
                    try:
                        item = await asyncio.wait_for(self._queue.get(), deadline - loop.time())
                    except TimeoutError:
                        item = None
                if item is None:
                    break
                if size + len(item.images) > self._max_batch:
                    self._waiting.append(item)  # first in the next batch
                    break
                batch.append(item)
                size += len(item.images)
            await self._run(batch, size)

    def _next_now(self) -> _Pending | None:
        if self._waiting:
            return self._waiting.pop(0)
        try:
            return self._queue.get_nowait()
        except asyncio.QueueEmpty:
            return None

    async def _run(self, batch: list[_Pending], size: int) -> None:
        batch = [item for item in batch if not item.answer.cancelled()]  # its client went away
        if not batch:
            return
        if self._stopped:  # gathered as the server stopped: its inference thread is closing or closed
            _fail(batch, Stopping())
            return
        images = batch[0].images if len(batch) == 1 else np.concatenate([item.images for item in batch])
        if self._observe_batch:
            self._observe_batch(size)
        try:
            pass_ = asyncio.get_running_loop().run_in_executor(self._thread, self._infer, images)
        except RuntimeError:  # the inference thread no longer takes work: the server is stopping
            _fail(batch, Stopping())
            return
        try:
            logits = await pass_
        except asyncio.CancelledError:  # stopped mid-pass: these requests are answered as stopping, not left open
            _fail(batch, Stopping())
            raise
        except Exception as error:  # noqa: BLE001 - the model failed: every request in the batch hears why
            _fail(batch, error)
            return
        start = 0
        for item in batch:
            end = start + len(item.images)
            if not item.answer.done():
                item.answer.set_result(logits[start:end])
            start = end

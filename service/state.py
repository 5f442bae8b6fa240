"""Everything one running service owns (registry, budgets, thread pools, metrics), built by the lifespan.

Encoding runs on ``encode_pool`` (one job per stream at a time), whole-file /v1/encode and
/v1/decode jobs on ``oneshot_pool``, so a long upload never starves the frame streams.
The codec's numba kernels and ONNX Runtime release the GIL, so threads scale.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from starlette.requests import Request
from zvc69_rt.service.limits import InflightBudget, LimitExceeded, PixelBudget
from zvc69_rt.service.metrics import Metrics
from zvc69_rt.service.settings import Settings
from zvc69_rt.service.streams import StreamRegistry

T = TypeVar("T")


class ServiceState:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.metrics = Metrics()
        self.registry = StreamRegistry(settings.max_streams, settings.idle_timeout_s, settings.retry_after_s)
        self.budget = InflightBudget(settings.max_inflight_bytes)
        self.pixels = PixelBudget(settings.max_encode_pixels)
        self.encode_pool = ThreadPoolExecutor(max_workers=settings.workers, thread_name_prefix="zvc69-enc")
        self.oneshot_pool = ThreadPoolExecutor(max_workers=settings.max_oneshot_jobs, thread_name_prefix="zvc69-job")
        self.oneshot_jobs = 0
        self.ready = False
        self.ready_error: str | None = None
        self.draining = False

    async def run(self, pool: ThreadPoolExecutor, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``fn`` on a pool; if the awaiting request is cancelled the job still finishes first."""
        fut = asyncio.get_running_loop().run_in_executor(pool, functools.partial(fn, *args, **kwargs))
        try:
            return await asyncio.shield(fut)
        except asyncio.CancelledError:
            await asyncio.wait([fut])  # never leave a job touching state a later request will use
            raise

    async def encode(self, pixels: int, fn: Callable[..., T], *args: Any) -> T:
        """Run an encoder job on ``encode_pool`` once ``pixels`` (its frame size) fit the pixel budget."""
        held = await self.pixels.acquire(pixels)
        try:
            return await self.run(self.encode_pool, fn, *args)
        finally:
            self.pixels.release(held)

    def check_accepting(self) -> None:
        if self.draining:
            raise LimitExceeded(503, "shutting_down", "server is shutting down", self.settings.retry_after_s)

    def acquire_oneshot(self) -> None:
        if self.oneshot_jobs >= self.settings.max_oneshot_jobs:
            raise LimitExceeded(429, "oneshot_jobs",
                                f"server runs its limit of {self.settings.max_oneshot_jobs} whole-file jobs; "
                                "retry later", self.settings.retry_after_s)
        self.oneshot_jobs += 1

    def release_oneshot(self) -> None:
        self.oneshot_jobs -= 1

    def shutdown(self) -> None:
        """Finish running jobs, then drop every stream (lifespan exit, after uvicorn drained requests)."""
        self.draining = True
        self.encode_pool.shutdown(wait=True, cancel_futures=True)
        self.oneshot_pool.shutdown(wait=True, cancel_futures=True)
        self.registry.clear()
        self.ready = False


def get_state(request: Request) -> ServiceState:
    """FastAPI dependency: the app's ServiceState."""
    return request.app.state.service

"""CudaStreamManager: one CUDA stream per role, ordered with events, on the device's
primary context (the one TensorRT uses too).

Roles (the design card's): Inference, MemoryH2D, MemoryD2H, PostProcess. Frame N+1's
upload (MemoryH2D) and frame N-1's download (MemoryD2H) can overlap frame N's
inference because each role has its own stream and the only ordering is the events
recorded between them. Every thread that touches CUDA enters ``activate()`` (push on
entry, pop on exit; re-entrant per thread); ``thread_context`` plugs that into the
pipelined scheduler's worker threads.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum

from zvc69_rt.backends.cuda.driver import cuda_driver


class StreamRole(Enum):
    INFERENCE = "inference"
    MEMORY_H2D = "memory_h2d"
    MEMORY_D2H = "memory_d2h"
    POST_PROCESS = "post_process"


@dataclass(frozen=True)
class DeviceInfo:
    index: int
    name: str
    compute_capability: tuple[int, int]
    total_memory: int

    @property
    def cc(self) -> str:
        return f"{self.compute_capability[0]}.{self.compute_capability[1]}"


class CudaStreamManager:
    def __init__(self, device: int = 0):
        self.cuda = cuda = cuda_driver()
        dev = cuda.Device(device)
        major, minor = dev.compute_capability()
        self.device = DeviceInfo(device, str(dev.name()), (int(major), int(minor)), int(dev.total_memory()))
        self.context = dev.retain_primary_context()
        self._local = threading.local()
        with self.activate():
            self.streams = {role: cuda.Stream() for role in StreamRole}
        self._closed = False

    @contextlib.contextmanager
    def activate(self) -> Iterator[None]:
        """Make the primary context current on this thread for the block (re-entrant)."""
        depth = getattr(self._local, "depth", 0)
        if depth == 0:
            self.context.push()
        self._local.depth = depth + 1
        try:
            yield
        finally:
            self._local.depth -= 1
            if self._local.depth == 0:
                self.context.pop()

    def thread_context(self, role: str) -> contextlib.AbstractContextManager:
        """For PipelinedEncoder(thread_context=...): every worker thread holds the context."""
        return self.activate()

    def stream(self, role: StreamRole):
        return self.streams[role]

    def order(self, before: StreamRole, after: StreamRole, event=None):
        """Work queued on ``after`` from now on waits for what is queued on ``before`` so far."""
        event = event or self.cuda.Event()
        event.record(self.streams[before])
        self.streams[after].wait_for_event(event)
        return event

    def synchronize(self) -> None:
        with self.activate():
            for s in self.streams.values():
                s.synchronize()

    def close(self) -> None:
        """Release the primary context reference (streams die with it)."""
        if not self._closed:
            self._closed = True
            self.synchronize()
            self.context.detach()

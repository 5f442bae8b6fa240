"""FramePool: a bounded pool of preallocated buffers, so steady-state encoding allocates
nothing per frame.

Buffers are allocated lazily up to ``capacity`` (each such allocation is a *miss*) and
then recycled (*hits*). A buffer is handed out as a context manager that returns itself
to the pool on exit; when all ``capacity`` buffers are out, ``acquire`` blocks (this is
backpressure, not an allocation). On CPU the buffers are 64-byte aligned numpy arrays;
on CUDA pass ``allocator=pinned_allocator(manager)`` for page-locked host memory, which
DMA copies need to be truly asynchronous.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Self

import numpy as np

from zvc69_rt.errors import InputError

Allocator = Callable[[tuple[int, ...], np.dtype], np.ndarray]


def aligned_empty(shape: tuple[int, ...], dtype: np.dtype, alignment: int = 64) -> np.ndarray:
    """An uninitialised C-contiguous array whose data starts on an ``alignment`` boundary."""
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    raw = np.empty(nbytes + alignment, dtype=np.uint8)
    off = (-raw.ctypes.data) % alignment
    return raw[off : off + nbytes].view(dtype).reshape(shape)


@dataclass(frozen=True)
class PoolStats:
    hits: int  # acquisitions served by a recycled buffer
    misses: int  # acquisitions that had to allocate
    peak: int  # most buffers out at once
    in_use: int
    allocated: int
    capacity: int
    buffer_bytes: int

    def to_dict(self) -> dict:
        return asdict(self)


class PooledBuffer:
    """One pooled array; ``with pool.acquire() as buf: buf.array[...] = ...``."""

    __slots__ = ("_out", "_pool", "array")

    def __init__(self, array: np.ndarray, pool: FramePool):
        self.array = array
        self._pool = pool
        self._out = False

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def release(self) -> None:
        """Give the buffer back (idempotent: a second release is a no-op)."""
        self._pool._give_back(self)


class FramePool:
    def __init__(self, shape: tuple[int, ...], dtype=np.uint8, capacity: int = 8,
                 allocator: Allocator | None = None, alignment: int = 64,
                 max_bytes: int | None = None, name: str = "frames"):
        shape = tuple(int(s) for s in shape)
        if not shape or any(s <= 0 for s in shape):
            raise InputError(f"pool {name}: shape must be positive dimensions, got {shape}")
        if not isinstance(capacity, int) or capacity < 1:
            raise InputError(f"pool {name}: capacity must be >= 1, got {capacity!r}")
        self.name = name
        self.shape = shape
        self.dtype = np.dtype(dtype)
        self.capacity = capacity
        self.buffer_bytes = int(np.prod(shape, dtype=np.int64)) * self.dtype.itemsize
        if max_bytes is not None and self.buffer_bytes * capacity > max_bytes:
            raise InputError(
                f"pool {name}: {capacity} buffers of {self.buffer_bytes} bytes exceed the "
                f"{max_bytes}-byte cap (lower queue_depth/pool_buffers or raise max_pool_bytes)"
            )
        self._alloc = allocator or (lambda s, d: aligned_empty(s, d, alignment))
        self._free: list[PooledBuffer] = []
        self._cond = threading.Condition()
        self._allocated = 0
        self._in_use = 0
        self._hits = self._misses = self._peak = 0

    def acquire(self, timeout: float | None = None) -> PooledBuffer:
        """A buffer (contents undefined). Blocks while all are out; TimeoutError after ``timeout``."""
        with self._cond:
            if (not self._free and self._allocated >= self.capacity
                    and not self._cond.wait_for(lambda: bool(self._free), timeout)):
                raise TimeoutError(
                    f"pool {self.name}: all {self.capacity} buffers in use for {timeout} s "
                    "(a consumer is not releasing them)"
                )
            if self._free:
                buf = self._free.pop()
                self._hits += 1
            else:
                arr = self._alloc(self.shape, self.dtype)
                if arr.shape != self.shape or arr.dtype != self.dtype:
                    raise InputError(f"pool {self.name}: allocator returned {arr.dtype}{arr.shape}")
                buf = PooledBuffer(arr, self)
                self._allocated += 1
                self._misses += 1
            buf._out = True
            self._in_use += 1
            self._peak = max(self._peak, self._in_use)
            return buf

    def prewarm(self, n: int | None = None) -> None:
        """Allocate ``n`` (default: capacity) buffers now, so the first frames do not miss."""
        n = self.capacity if n is None else min(n, self.capacity)
        bufs = [self.acquire() for _ in range(n)]
        for b in bufs:
            b.release()
        with self._cond:
            self._hits = self._misses = 0
            self._peak = 0

    def _give_back(self, buf: PooledBuffer) -> None:
        with self._cond:
            if not buf._out:
                return
            if buf._pool is not self:
                raise InputError(f"pool {self.name}: buffer belongs to another pool")
            buf._out = False
            self._in_use -= 1
            self._free.append(buf)
            self._cond.notify()

    def stats(self) -> PoolStats:
        with self._cond:
            return PoolStats(self._hits, self._misses, self._peak, self._in_use, self._allocated,
                             self.capacity, self.buffer_bytes)

    def reset_stats(self) -> None:
        """Start a new measurement window (e.g. after warm-up); peak restarts at in-use."""
        with self._cond:
            self._hits = self._misses = 0
            self._peak = self._in_use

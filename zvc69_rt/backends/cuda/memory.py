"""Pinned host memory and device buffers (pycuda), sized once per engine profile."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from zvc69_rt.backends.cuda.streams import CudaStreamManager


def pinned_allocator(manager: CudaStreamManager) -> Callable[[tuple[int, ...], np.dtype], np.ndarray]:
    """A FramePool allocator handing out page-locked host arrays (truly async DMA copies)."""

    def alloc(shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        with manager.activate():
            return manager.cuda.pagelocked_empty(shape, dtype)

    return alloc


class DeviceTensor:
    """A device allocation plus its pinned host staging buffer, sized for the largest
    shape of the engine profile; each run uses a prefix view of the right shape."""

    def __init__(self, manager: CudaStreamManager, name: str, max_shape: tuple[int, ...], dtype: np.dtype):
        self.name = name
        self.dtype = np.dtype(dtype)
        self.max_shape = tuple(int(s) for s in max_shape)
        self.capacity = max(1, int(np.prod(self.max_shape, dtype=np.int64)))
        self.nbytes = self.capacity * self.dtype.itemsize
        cuda = manager.cuda
        with manager.activate():
            self.device = cuda.mem_alloc(self.nbytes)
            self.host = cuda.pagelocked_empty((self.capacity,), self.dtype)

    @property
    def ptr(self) -> int:
        return int(self.device)

    def host_view(self, shape: tuple[int, ...]) -> np.ndarray:
        n = int(np.prod(shape, dtype=np.int64))
        return self.host[:n].reshape(shape)

    def free(self) -> None:
        self.device.free()

"""A strict fake of the ``pycuda.driver`` subset ZVC69 calls.

Only the names in ``API`` exist on the module installed as ``pycuda.driver``; objects
use ``__slots__``, so any other attribute (read or write) raises AttributeError. The fake
enforces what the real driver would punish silently or later:

- every call that needs a CUDA context raises LogicError unless this *thread* pushed one;
- async copies must use page-locked host memory from ``pagelocked_empty`` (a pageable
  buffer would make the copy synchronous on real hardware);
- copies must fit their device allocation; freed allocations cannot be used.

Device memory is simulated in host bytearrays; copies happen immediately and every
operation is appended to ``STATE.log`` as (op, stream handle or None, thread name).
"""

from __future__ import annotations

import itertools
import sys
import threading
import types

import numpy as np


class Error(Exception):
    pass


class LogicError(Error):
    pass


class _State:
    def __init__(self):
        self.reset()

    def reset(self, devices=(("NVIDIA H100 80GB HBM3", (9, 0), 80 << 30),)):
        self.initialised = False
        self.devices = list(devices)
        self.tls = threading.local()
        self.memory: dict[int, bytearray] = {}
        self.pinned: list[tuple[int, int]] = []  # (address, nbytes) of page-locked arrays
        self.log: list[tuple] = []
        self.ids = itertools.count(0x1000)
        self.lock = threading.Lock()
        self.pushes = 0
        self.pops = 0

    def stack(self) -> list:
        if not hasattr(self.tls, "stack"):
            self.tls.stack = []
        return self.tls.stack

    def record(self, op: str, stream=None) -> None:
        with self.lock:
            self.log.append((op, stream, threading.current_thread().name))


STATE = _State()


def _need_init() -> None:
    if not STATE.initialised:
        raise LogicError("cuInit has not been called")


def _need_context(op: str) -> None:
    _need_init()
    if not STATE.stack():
        raise LogicError(f"{op} failed: invalid device context (no context pushed on this thread)")


def init(flags: int = 0) -> None:
    STATE.initialised = True


class Device:
    __slots__ = ("_index",)

    def __init__(self, index: int):
        _need_init()
        if not 0 <= index < len(STATE.devices):
            raise LogicError(f"cuDeviceGet failed: invalid device ordinal {index}")
        self._index = index

    @staticmethod
    def count() -> int:
        _need_init()
        return len(STATE.devices)

    def name(self) -> str:
        return STATE.devices[self._index][0]

    def compute_capability(self) -> tuple[int, int]:
        return STATE.devices[self._index][1]

    def total_memory(self) -> int:
        return STATE.devices[self._index][2]

    def retain_primary_context(self) -> Context:
        return Context(self._index)


class Context:
    __slots__ = ("_detached", "_device")

    def __init__(self, device: int):
        self._device = device
        self._detached = False

    def push(self) -> None:
        if self._detached:
            raise LogicError("context was detached")
        STATE.stack().append(self)
        STATE.pushes += 1
        STATE.record("push")

    def pop(self) -> None:
        st = STATE.stack()
        if not st:
            raise LogicError("cuCtxPopCurrent failed: no context on this thread")
        st.pop()
        STATE.pops += 1
        STATE.record("pop")

    def detach(self) -> None:
        self._detached = True


class Stream:
    __slots__ = ("_waits", "handle")

    def __init__(self, flags: int = 0):
        _need_context("cuStreamCreate")
        self.handle = next(STATE.ids)
        self._waits: list = []

    def synchronize(self) -> None:
        _need_context("cuStreamSynchronize")
        STATE.record("stream_sync", self.handle)

    def wait_for_event(self, event: Event) -> None:
        _need_context("cuStreamWaitEvent")
        if not isinstance(event, Event) or event._recorded_on is None:
            raise LogicError("wait_for_event on an event that was never recorded")
        STATE.record(f"wait:{event._recorded_on}", self.handle)


class Event:
    __slots__ = ("_recorded_on",)

    def __init__(self, flags: int = 0):
        _need_context("cuEventCreate")
        self._recorded_on = None

    def record(self, stream: Stream | None = None) -> Event:
        _need_context("cuEventRecord")
        self._recorded_on = stream.handle if stream is not None else 0
        STATE.record("event_record", self._recorded_on)
        return self

    def synchronize(self) -> Event:
        _need_context("cuEventSynchronize")
        STATE.record("event_sync", self._recorded_on)
        return self

    def time_since(self, other: Event) -> float:
        return 0.0


class DeviceAllocation:
    __slots__ = ("_freed", "_ptr", "nbytes")

    def __init__(self, nbytes: int):
        self._ptr = next(STATE.ids) << 20
        self.nbytes = nbytes
        self._freed = False
        STATE.memory[self._ptr] = bytearray(nbytes)

    def __int__(self) -> int:
        if self._freed:
            raise LogicError("use of a freed device allocation")
        return self._ptr

    def free(self) -> None:
        self._freed = True
        STATE.memory.pop(self._ptr, None)


def mem_alloc(nbytes: int) -> DeviceAllocation:
    _need_context("cuMemAlloc")
    if nbytes <= 0:
        raise LogicError("cuMemAlloc failed: size 0")
    return DeviceAllocation(int(nbytes))


def pagelocked_empty(shape, dtype, order: str = "C", mem_flags: int = 0) -> np.ndarray:
    _need_context("cuMemHostAlloc")
    a = np.empty(shape, dtype, order=order)
    STATE.pinned.append((a.ctypes.data, a.nbytes))
    return a


def _check_pinned(a: np.ndarray, op: str) -> None:
    if not isinstance(a, np.ndarray):
        raise LogicError(f"{op}: host side must be a numpy array")
    if not a.flags.c_contiguous:
        raise LogicError(f"{op}: host array is not contiguous")
    start = a.ctypes.data
    if not any(p <= start and start + a.nbytes <= p + n for p, n in STATE.pinned):
        raise LogicError(f"{op}: host buffer is pageable, not from pagelocked_empty (copy would not be async)")


def _device_buf(dev, nbytes: int, op: str) -> bytearray:
    ptr = int(dev)
    buf = STATE.memory.get(ptr)
    if buf is None:
        raise LogicError(f"{op}: invalid device pointer")
    if nbytes > len(buf):
        raise LogicError(f"{op}: {nbytes} bytes exceed the {len(buf)}-byte allocation")
    return buf


def memcpy_htod_async(dest, src: np.ndarray, stream: Stream | None = None) -> None:
    _need_context("cuMemcpyHtoDAsync")
    _check_pinned(src, "memcpy_htod_async")
    buf = _device_buf(dest, src.nbytes, "memcpy_htod_async")
    buf[: src.nbytes] = src.tobytes()
    STATE.record("htod", stream.handle if stream else None)


def memcpy_dtoh_async(dest: np.ndarray, src, stream: Stream | None = None) -> None:
    _need_context("cuMemcpyDtoHAsync")
    _check_pinned(dest, "memcpy_dtoh_async")
    buf = _device_buf(src, dest.nbytes, "memcpy_dtoh_async")
    dest.reshape(-1).view(np.uint8)[:] = np.frombuffer(bytes(buf[: dest.nbytes]), np.uint8)
    STATE.record("dtoh", stream.handle if stream else None)


API = ("Error", "LogicError", "init", "Device", "Context", "Stream", "Event", "DeviceAllocation",
       "mem_alloc", "pagelocked_empty", "memcpy_htod_async", "memcpy_dtoh_async")


def device_bytes(ptr: int) -> bytearray:
    """Test helper: the simulated device memory behind a pointer (fake tensorrt reads it)."""
    return STATE.memory[ptr]


def install(monkeypatch) -> types.ModuleType:
    """Put strict ``pycuda`` / ``pycuda.driver`` modules into sys.modules for one test."""
    STATE.reset()
    driver = types.ModuleType("pycuda.driver")
    mod = sys.modules[__name__]
    for name in API:
        setattr(driver, name, getattr(mod, name))
    pkg = types.ModuleType("pycuda")
    pkg.driver = driver
    pkg.__path__ = []
    monkeypatch.setitem(sys.modules, "pycuda", pkg)
    monkeypatch.setitem(sys.modules, "pycuda.driver", driver)
    return driver

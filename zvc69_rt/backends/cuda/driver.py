"""Lazy pycuda import: the runtime never imports pycuda at module import time."""

from __future__ import annotations

from zvc69_rt.errors import NotAvailableError

INSTALL_HINT = "pip install 'zvc69-rt[gpu]' (tensorrt>=10, pycuda) on a host with an NVIDIA GPU and driver"


def cuda_driver():
    """``pycuda.driver``, initialised; NotAvailableError when pycuda, the driver or a GPU is missing."""
    try:
        import pycuda.driver as cuda
    except ImportError as exc:
        raise NotAvailableError(f"pycuda is not installed (or finds no CUDA driver): {INSTALL_HINT}") from exc
    try:
        cuda.init()
        count = cuda.Device.count()
    except Exception as exc:  # pycuda raises its own driver errors here
        raise NotAvailableError(f"CUDA driver could not start: {exc}") from exc
    if count < 1:
        raise NotAvailableError("no CUDA device found")
    return cuda

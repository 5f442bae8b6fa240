"""Lazy ``tensorrt`` import with an install hint."""

from __future__ import annotations

from zvc69_rt.errors import NotAvailableError

INSTALL_HINT = ("TensorRT is not installed: on a host with an NVIDIA GPU run "
                "pip install 'zvc69-rt[gpu]' (tensorrt>=10, pycuda); or use --backend onnxruntime")


def import_tensorrt():
    try:
        import tensorrt
    except ImportError as exc:
        raise NotAvailableError(INSTALL_HINT) from exc
    major = int(str(tensorrt.__version__).split(".")[0])
    if major < 10:
        raise NotAvailableError(f"TensorRT {tensorrt.__version__} is too old: ZVC69 needs TensorRT 10 or 11")
    return tensorrt


def make_logger(trt):
    return trt.Logger(trt.Logger.WARNING)

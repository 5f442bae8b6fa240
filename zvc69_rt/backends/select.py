"""`--backend auto|onnxruntime|tensorrt`: pick one and say which (and why).

auto = the fastest available: native TensorRT when tensorrt, pycuda and a GPU are all
present; else ONNX Runtime with its best provider (TensorRT EP > CUDA EP > CPU).
"""

from __future__ import annotations

from zvc69_rt.errors import InputError, NotAvailableError

BACKENDS = ("auto", "onnxruntime", "tensorrt")


def _make(name: str, **kwargs):
    if name == "onnxruntime":
        from zvc69_rt.backends.onnxruntime import OnnxRuntimeBackend

        return OnnxRuntimeBackend(**kwargs)
    from zvc69_rt.backends.tensorrt import TensorRTBackend

    return TensorRTBackend(**kwargs)


def choose_backend(name: str = "auto", **kwargs) -> tuple[object, str]:
    """(backend, one line saying which backend runs and why)."""
    if name not in BACKENDS:
        raise InputError(f"unknown backend {name!r}: use auto, onnxruntime or tensorrt")
    if name != "auto":
        be = _make(name, **kwargs.get(name, {}))
        return be, f"backend {be.describe()} (requested)"
    try:
        be = _make("tensorrt", **kwargs.get("tensorrt", {}))
        return be, f"backend {be.describe()} (auto: TensorRT, pycuda and a GPU are present)"
    except NotAvailableError as why:
        be = _make("onnxruntime", **kwargs.get("onnxruntime", {}))
        return be, f"backend {be.describe()} (auto: native TensorRT unavailable: {why})"


def select_backend(name: str = "auto", **kwargs):
    """The backend for ``--backend NAME``; its ``selection`` attribute says which and why."""
    be, reason = choose_backend(name, **kwargs)
    be.selection = reason
    return be

"""`--backend auto|onnxruntime|tensorrt`: pick one and say which."""

from __future__ import annotations

from zvc69_rt.errors import InputError, NotAvailableError


def select_backend(name: str = "auto"):
    if name == "onnxruntime":
        from zvc69_rt.backends.onnxruntime import OnnxRuntimeBackend

        return OnnxRuntimeBackend()
    if name == "tensorrt":
        try:
            from zvc69_rt.backends.tensorrt import TensorRTBackend
        except ImportError as exc:
            raise NotAvailableError("the TensorRT backend is not built into this install") from exc
        return TensorRTBackend()
    if name == "auto":
        try:
            return select_backend("tensorrt")
        except NotAvailableError:
            return select_backend("onnxruntime")
    raise InputError(f"unknown backend {name!r}: use auto, onnxruntime or tensorrt")

"""Shared pytest hooks.

``@pytest.mark.gpu`` tests need TensorRT, pycuda and an NVIDIA GPU; without them they
are skipped with the reason, so ``pytest`` passes on CPU-only machines and
``pytest -m gpu`` runs them for real on a GPU host.
"""

from __future__ import annotations

import importlib.util

import pytest


def _gpu_missing() -> str | None:
    for mod in ("tensorrt", "pycuda"):
        if importlib.util.find_spec(mod) is None:
            return f"{mod} is not installed"
    try:
        import pycuda.driver as cuda

        cuda.init()
        if cuda.Device.count() < 1:
            return "no CUDA device"
    except Exception as exc:  # noqa: BLE001 (any driver failure means: no GPU here)
        return f"CUDA driver unavailable: {exc}"
    return None


def pytest_collection_modifyitems(config, items):
    gpu_items = [i for i in items if i.get_closest_marker("gpu") is not None]
    if not gpu_items:
        return
    reason = _gpu_missing()
    if reason:
        skip = pytest.mark.skip(reason=f"needs an NVIDIA GPU with TensorRT and pycuda: {reason}")
        for item in gpu_items:
            item.add_marker(skip)


@pytest.fixture(scope="module")
def shipped_inter():
    """(bundle, runners) of the shipped bundle's P-frame graphs on ONNX Runtime (one thread)."""
    from zvc69_rt.backends.onnxruntime import OnnxRuntimeBackend
    from zvc69_rt.codec.inter import DECODER_GRAPHS, ENCODER_GRAPHS
    from zvc69_rt.models.bundle import ModelBundle

    bundle = ModelBundle.load()
    if "inter" not in bundle.manifest:
        pytest.skip("the shipped bundle has no P-frame graphs")
    be = OnnxRuntimeBackend(threads=1)
    return bundle, {g: be.load(bundle.graph_path(g)) for g in set(ENCODER_GRAPHS) | set(DECODER_GRAPHS)}

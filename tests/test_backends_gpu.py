"""Real hardware: runs only under `pytest -m gpu` on a host with TensorRT, pycuda and an
NVIDIA GPU (skipped elsewhere by tests/conftest.py)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.fakes.graphs import conv_relu, write_bundle

pytestmark = pytest.mark.gpu


def test_real_engine_matches_onnxruntime(tmp_path):
    from zvc69_rt.backends.onnxruntime import OnnxRuntimeBackend
    from zvc69_rt.backends.tensorrt import TensorRTBackend

    b = write_bundle(tmp_path / "b", analysis=conv_relu(seed=1))
    be = TensorRTBackend(cache_dir=tmp_path / "cache", profile="256x256")
    r = be.load(b / "analysis.fp32.onnx")
    x = np.random.default_rng(0).standard_normal((1, 3, 128, 192)).astype(np.float32)
    ref = OnnxRuntimeBackend(threads=2, providers=["CPUExecutionProvider"]).load(b / "analysis.fp32.onnx")
    np.testing.assert_allclose(r.run({"x": x})["y"], ref.run({"x": x})["y"], rtol=1e-3, atol=1e-3)
    again = TensorRTBackend(cache_dir=tmp_path / "cache", profile="256x256")
    again.load(b / "analysis.fp32.onnx")
    assert not again.loaded[0].built  # reused from the engine cache


def test_real_bundle_fp16_engines_build(tmp_path):
    from zvc69_rt.engines.bundle import build_bundle

    from zvc69_rt.models.bundle import ModelBundle

    results = build_bundle(ModelBundle.load(), "fp16", "1080p", tmp_path / "cache")
    assert {r["graph"] for r in results} >= {"analysis", "synthesis", "hyper_synthesis"}

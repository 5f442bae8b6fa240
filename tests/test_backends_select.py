"""Backend selection and the ONNX Runtime backend (session options, providers, I/O)."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from tests.fakes import pycuda_fake, tensorrt_fake
from tests.fakes.graphs import conv_relu
from zvc69_rt.backends.base import Backend, Runner
from zvc69_rt.backends.onnxruntime import OnnxRuntimeBackend
from zvc69_rt.backends.select import choose_backend, select_backend
from zvc69_rt.errors import InputError, NotAvailableError


@pytest.fixture
def graph(tmp_path):
    p = tmp_path / "analysis.fp32.onnx"
    p.write_bytes(conv_relu(seed=3))
    return p


def test_ort_backend_runs_a_dynamic_graph(graph):
    be = OnnxRuntimeBackend(threads=1)
    assert isinstance(be, Backend) and be.providers[-1] == "CPUExecutionProvider"
    so = be.session_options()
    import onnxruntime as ort

    assert so.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    assert so.intra_op_num_threads == 1
    assert so.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    r = be.load(graph)
    assert isinstance(r, Runner) and r.input_names == ["x"] and r.output_names == ["y"]
    for h, w in ((8, 8), (17, 33)):  # dynamic H/W, odd sizes included
        x = np.random.default_rng(h).standard_normal((1, 3, h, w)).astype(np.float32)
        y = r.run({"x": x})["y"]
        assert y.shape == (1, 4, h, w) and (y >= 0).all()  # Relu
    with pytest.raises(InputError, match="missing inputs"):
        r.run({})
    with pytest.raises(InputError, match="no such file"):
        be.load(graph.with_name("nope.onnx"))
    with pytest.raises(NotAvailableError, match="lacks providers"):
        OnnxRuntimeBackend(providers=["NoSuchExecutionProvider"])


def test_ort_missing_is_not_available(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import raises ImportError
    with pytest.raises(NotAvailableError, match=r"pip install 'zvc69-rt\[cpu\]'"):
        OnnxRuntimeBackend()


def test_select_explicit_and_unknown():
    be = select_backend("onnxruntime")
    assert be.name == "onnxruntime" and "requested" in be.selection
    with pytest.raises(InputError, match="unknown backend 'cuda'"):
        select_backend("cuda")


def test_auto_falls_back_to_onnxruntime_and_says_why(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    be, why = choose_backend("auto")
    assert be.name == "onnxruntime" and "TensorRT is not installed" in why
    with pytest.raises(NotAvailableError, match="TensorRT is not installed"):
        select_backend("tensorrt")


def test_auto_prefers_tensorrt_when_present(monkeypatch, tmp_path):
    pycuda_fake.install(monkeypatch)
    tensorrt_fake.install(monkeypatch, version="11.4.0")
    be, why = choose_backend("auto", tensorrt={"cache_dir": tmp_path})
    assert be.name == "tensorrt" and "tensorrt 11.4.0 on NVIDIA H100" in why
    pycuda_fake.STATE.devices = []  # tensorrt installed but no GPU: fall back
    be, why = choose_backend("auto", tensorrt={"cache_dir": tmp_path})
    assert be.name == "onnxruntime" and "no CUDA device" in why


def test_old_tensorrt_is_refused(monkeypatch):
    pycuda_fake.install(monkeypatch)
    tensorrt_fake.install(monkeypatch, version="8.6.1")
    with pytest.raises(NotAvailableError, match="too old"):
        select_backend("tensorrt")

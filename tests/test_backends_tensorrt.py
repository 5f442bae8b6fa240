"""TensorRT backend and CUDA stream manager against the strict doubles: context push/pop
per thread, pinned staging, stream/event ordering, shapes, profile limits, and outputs
equal to ONNX Runtime on the same graph."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from tests.fakes import pycuda_fake, tensorrt_fake
from tests.fakes.graphs import conv_relu, write_bundle
from tests.fakes.staged import HashStaged, make_frames
from zvc69_rt.backends.base import Runner
from zvc69_rt.backends.cuda.memory import pinned_allocator
from zvc69_rt.backends.cuda.streams import CudaStreamManager, StreamRole
from zvc69_rt.backends.onnxruntime import OnnxRuntimeBackend
from zvc69_rt.errors import InputError, NotAvailableError
from zvc69_rt.pipeline import FramePool, PipelineConfig, PipelinedEncoder, encode_sequential

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def fakes(monkeypatch):
    cuda = pycuda_fake.install(monkeypatch)
    trt = tensorrt_fake.install(monkeypatch)
    return cuda, trt


@pytest.fixture
def bundle(tmp_path):
    return write_bundle(tmp_path / "b", analysis=conv_relu(seed=1),
                        synthesis=conv_relu(cin=4, cout=3, with_gain=True, seed=2))


def test_stream_manager_roles_and_contexts(fakes):
    m = CudaStreamManager(0)
    assert m.device.name.startswith("NVIDIA H100") and m.device.cc == "9.0"
    assert set(m.streams) == set(StreamRole) and len({s.handle for s in m.streams.values()}) == 4
    assert pycuda_fake.STATE.stack() == []  # context popped after setup
    with m.activate(), m.activate():  # re-entrant: one push
        assert len(pycuda_fake.STATE.stack()) == 1
    assert pycuda_fake.STATE.stack() == []
    with pytest.raises(pycuda_fake.LogicError, match="invalid device context"):
        m.order(StreamRole.MEMORY_H2D, StreamRole.INFERENCE)  # no context on this thread
    with m.activate():
        m.order(StreamRole.MEMORY_H2D, StreamRole.INFERENCE)
    h2d, inf = m.streams[StreamRole.MEMORY_H2D].handle, m.streams[StreamRole.INFERENCE].handle
    assert ("event_record", h2d) in [(o, s) for o, s, _ in pycuda_fake.STATE.log]
    assert (f"wait:{h2d}", inf) in [(o, s) for o, s, _ in pycuda_fake.STATE.log]
    m.close()


def test_no_device_is_not_available(monkeypatch):
    pycuda_fake.install(monkeypatch)
    pycuda_fake.STATE.devices = []
    with pytest.raises(NotAvailableError, match="no CUDA device"):
        CudaStreamManager(0)


def test_runner_matches_onnxruntime_and_orders_streams(fakes, bundle, tmp_path):
    from zvc69_rt.backends.tensorrt import TensorRTBackend

    be = TensorRTBackend(cache_dir=tmp_path / "cache", profile="256x128")
    runner = be.load(bundle / "synthesis.fp32.onnx")
    assert isinstance(runner, Runner)
    assert runner.input_names == ["x", "gain"] and runner.output_names == ["y"]
    ref = OnnxRuntimeBackend(threads=1).load(bundle / "synthesis.fp32.onnx")
    rng = np.random.default_rng(0)
    for h, w in ((8, 16), (4, 4), (8, 8)):  # latent sizes within 64x64 .. 128x256 frames at stride 16
        inputs = {"x": rng.standard_normal((1, 4, h, w)).astype(np.float32),
                  "gain": rng.uniform(0.5, 2, (1, 3, 1, 1)).astype(np.float32)}
        pycuda_fake.STATE.log.clear()
        got = runner.run(inputs)
        np.testing.assert_allclose(got["y"], ref.run(inputs)["y"], rtol=1e-5, atol=1e-5)
        ops = [(o, s) for o, s, _ in pycuda_fake.STATE.log]
        st = {r: be.manager.streams[r].handle for r in StreamRole}
        seq = [o for o, _ in ops if o in ("htod", "execute", "dtoh")]
        assert seq == ["htod", "htod", "execute", "dtoh"]
        assert ("htod", st[StreamRole.MEMORY_H2D]) in ops and ("dtoh", st[StreamRole.MEMORY_D2H]) in ops
        assert ("execute", st[StreamRole.INFERENCE]) in ops
        assert ops.index((f"wait:{st[StreamRole.MEMORY_H2D]}", st[StreamRole.INFERENCE])) < ops.index(
            ("execute", st[StreamRole.INFERENCE]))
        assert ops.index((f"wait:{st[StreamRole.INFERENCE]}", st[StreamRole.MEMORY_D2H])) < ops.index(
            ("dtoh", st[StreamRole.MEMORY_D2H]))
    assert pycuda_fake.STATE.pushes == pycuda_fake.STATE.pops
    # second backend on the same cache: the engine is reused, not rebuilt
    builds = tensorrt_fake.STATS["builds"]
    TensorRTBackend(cache_dir=tmp_path / "cache", profile="256x128").load(bundle / "synthesis.fp32.onnx")
    assert tensorrt_fake.STATS["builds"] == builds


def test_runner_rejects_bad_inputs(fakes, bundle, tmp_path):
    from zvc69_rt.backends.tensorrt import TensorRTBackend

    runner = TensorRTBackend(cache_dir=tmp_path / "c", profile="256x128").load(bundle / "analysis.fp32.onnx")
    with pytest.raises(InputError, match="outside the engine profile"):
        runner.run({"x": np.zeros((1, 3, 256, 512), np.float32)})  # larger than the 256x128 profile
    with pytest.raises(InputError, match="missing"):
        runner.run({})
    with pytest.raises(InputError, match="unexpected"):
        runner.run({"x": np.zeros((1, 3, 64, 64), np.float32), "extra": np.zeros(1)})
    out = runner.run({"x": np.zeros((1, 3, 128, 256), np.float32)})  # exactly the max
    assert out["y"].shape == (1, 4, 128, 256)


def test_cached_plan_the_runtime_refuses_is_rebuilt(fakes, bundle, tmp_path):
    from zvc69_rt.backends.tensorrt import TensorRTBackend

    be = TensorRTBackend(cache_dir=tmp_path / "c", profile="128x128")
    be.load(bundle / "analysis.fp32.onnx")
    entry = be.loaded[0]
    # A plan whose sidecar matches but that the runtime cannot read (e.g. a driver update).
    bad = b"garbage plan"
    entry.plan_path.write_bytes(bad)
    import hashlib
    import json
    meta_path = entry.plan_path.with_suffix(".json")
    meta = json.loads(meta_path.read_text())
    meta["plan_sha256"] = hashlib.sha256(bad).hexdigest()
    meta_path.write_text(json.dumps(meta))
    builds = tensorrt_fake.STATS["builds"]
    runner = be.load(bundle / "analysis.fp32.onnx")
    assert tensorrt_fake.STATS["builds"] == builds + 1 and be.loaded[-1].built
    assert runner.run({"x": np.ones((1, 3, 64, 64), np.float32)})["y"].shape == (1, 4, 64, 64)


def test_pipeline_worker_threads_push_the_context(fakes):
    """Scheduler + stream manager: CUDA calls on every worker thread find a context."""
    m = CudaStreamManager(0)
    pool = FramePool((16 * 8 + 2 * 4 * 8,), np.uint8, capacity=5, allocator=pinned_allocator(m))

    class CudaStaged(HashStaged):
        def preprocess(self, frame):
            pycuda_fake.Event()  # needs the context on this (preprocess) thread
            return super().preprocess(frame)

        def infer(self, work):
            pycuda_fake.Stream()  # and on the inference thread
            return super().infer(work)

    frames = make_frames(12)
    enc = PipelinedEncoder(CudaStaged(pool=pool), PipelineConfig(queue_depth=3, num_workers=2),
                           pools={"pinned": pool}, thread_context=m.thread_context)
    out = []
    for f in frames:
        enc.submit(f, timeout=5)
    out = enc.flush(timeout=10)
    assert out == encode_sequential(HashStaged(), frames)
    threads = {t for op, _, t in pycuda_fake.STATE.log if op == "push"}
    assert {"zvc69-pre-0", "zvc69-pre-1", "zvc69-infer"} <= threads
    assert pycuda_fake.STATE.pushes == pycuda_fake.STATE.pops
    # the pinned pool's arrays are page-locked: usable for async copies on any thread
    with m.activate(), pool.acquire() as buf:
        dev = pycuda_fake.mem_alloc(buf.array.nbytes)
        pycuda_fake.memcpy_htod_async(dev, buf.array, m.streams[StreamRole.MEMORY_H2D])
    # and a pageable buffer is refused by the double (it would silently serialise on a GPU)
    with m.activate(), pytest.raises(pycuda_fake.LogicError, match="pageable"):
        pycuda_fake.memcpy_htod_async(dev, np.zeros(4, np.uint8))


def test_context_is_per_thread(fakes):
    m = CudaStreamManager(0)
    errors = []

    def work():
        try:
            pycuda_fake.mem_alloc(16)
        except pycuda_fake.LogicError as exc:
            errors.append(str(exc))

    with m.activate():  # pushed on this thread only
        t = threading.Thread(target=work)
        t.start()
        t.join()
    assert errors and "invalid device context" in errors[0]

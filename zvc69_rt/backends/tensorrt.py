"""Native TensorRT backend: engines from the cache (built on first use), name-based I/O,
``execute_async_v3`` on the Inference stream with uploads/downloads on their own streams.

Per run: inputs are staged into pinned buffers and copied on MemoryH2D; the Inference
stream waits for that event, runs the engine; MemoryD2H waits for inference and copies
the outputs back; the host waits on the final event only. Device and pinned buffers are
allocated once per engine at the profile's largest shapes, so steady state allocates no
device or pinned memory (outputs are returned as fresh numpy copies, because the pinned
staging buffer is reused by the next frame while the caller still holds the result).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from zvc69_rt.backends.cuda.memory import DeviceTensor
from zvc69_rt.backends.cuda.streams import CudaStreamManager, StreamRole
from zvc69_rt.errors import InputError, ZVC69Error


class TensorRTRunner:
    def __init__(self, trt, engine, manager: CudaStreamManager, name: str = "graph"):
        self.trt = trt
        self.engine = engine
        self.manager = manager
        self.name = name
        cuda = manager.cuda
        with manager.activate():
            self.context = engine.create_execution_context()
            self.input_names: list[str] = []
            self.output_names: list[str] = []
            self.dtypes: dict[str, np.dtype] = {}
            self.profile: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {}
            for i in range(engine.num_io_tensors):
                t = engine.get_tensor_name(i)
                self.dtypes[t] = np.dtype(trt.nptype(engine.get_tensor_dtype(t)))
                if engine.get_tensor_mode(t) == trt.TensorIOMode.INPUT:
                    self.input_names.append(t)
                    lo, _opt, hi = engine.get_tensor_profile_shape(t, 0)
                    self.profile[t] = (tuple(lo), tuple(hi))
                else:
                    self.output_names.append(t)
            # Largest shapes of the profile -> buffer sizes, allocated once.
            for t in self.input_names:
                self._set_shape(t, self.profile[t][1])
            self.buffers = {t: DeviceTensor(manager, t, self.profile[t][1], self.dtypes[t]) for t in self.input_names}
            for t in self.output_names:
                self.buffers[t] = DeviceTensor(manager, t, tuple(self.context.get_tensor_shape(t)), self.dtypes[t])
            for t, buf in self.buffers.items():
                if not self.context.set_tensor_address(t, buf.ptr):
                    raise ZVC69Error(f"TensorRT {name}: set_tensor_address failed for {t!r}")
            self.events = {k: cuda.Event() for k in ("h2d", "infer", "d2h")}

    @property
    def device_bytes(self) -> int:
        """Device memory this runner holds for I/O (the engine's activations come on top)."""
        return sum(b.nbytes for b in self.buffers.values())

    def _set_shape(self, name: str, shape: tuple[int, ...]) -> None:
        if not self.context.set_input_shape(name, tuple(int(s) for s in shape)):
            raise InputError(f"TensorRT {self.name}: input {name!r} shape {tuple(shape)} rejected by the engine")

    def _check(self, inputs: dict[str, np.ndarray]) -> None:
        missing = [t for t in self.input_names if t not in inputs]
        extra = [t for t in inputs if t not in self.input_names]
        if missing or extra:
            raise InputError(f"TensorRT {self.name}: inputs {sorted(inputs)} do not match the engine's "
                             f"{self.input_names} (missing {missing}, unexpected {extra})")
        for t in self.input_names:
            a = inputs[t]
            lo, hi = self.profile[t]
            if a.ndim != len(lo) or any(not lo[i] <= a.shape[i] <= hi[i] for i in range(a.ndim)):
                raise InputError(
                    f"TensorRT {self.name}: input {t!r} shape {a.shape} is outside the engine profile "
                    f"{lo}..{hi}; rebuild with `zvc69 engines build --profile WxH` for larger frames"
                )

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        self._check(inputs)
        cuda = self.manager.cuda
        s_h2d = self.manager.stream(StreamRole.MEMORY_H2D)
        s_inf = self.manager.stream(StreamRole.INFERENCE)
        s_d2h = self.manager.stream(StreamRole.MEMORY_D2H)
        with self.manager.activate():
            for t in self.input_names:
                a = inputs[t]
                buf = self.buffers[t]
                view = buf.host_view(a.shape)
                np.copyto(view, a, casting="same_kind")
                self._set_shape(t, a.shape)
                cuda.memcpy_htod_async(buf.device, view, s_h2d)
            self.events["h2d"].record(s_h2d)
            s_inf.wait_for_event(self.events["h2d"])
            if not self.context.execute_async_v3(s_inf.handle):
                raise ZVC69Error(f"TensorRT {self.name}: execute_async_v3 failed")
            self.events["infer"].record(s_inf)
            s_d2h.wait_for_event(self.events["infer"])
            views = {}
            for t in self.output_names:
                shape = tuple(self.context.get_tensor_shape(t))
                views[t] = self.buffers[t].host_view(shape)
                cuda.memcpy_dtoh_async(views[t], self.buffers[t].device, s_d2h)
            self.events["d2h"].record(s_d2h)
            self.events["d2h"].synchronize()
            return {t: v.copy() for t, v in views.items()}

    def close(self) -> None:
        with self.manager.activate():
            for b in self.buffers.values():
                b.free()


class TensorRTBackend:
    """``load(graph)`` -> runner, building or reusing the cached engine for this GPU."""

    name = "tensorrt"

    def __init__(self, cache_dir: Path | None = None, profile: str = "1080p", device: int = 0,
                 workspace_bytes: int | None = None):
        from zvc69_rt.engines.cache import DEFAULT_WORKSPACE, EngineCache
        from zvc69_rt.engines.profiles import parse_profile
        from zvc69_rt.engines.trt import import_tensorrt

        self.trt = import_tensorrt()
        self.manager = CudaStreamManager(device)
        self.profile = parse_profile(profile)
        dev = self.manager.device
        self.cache = EngineCache(cache_dir, self.trt, dev.name, dev.cc, workspace_bytes or DEFAULT_WORKSPACE)
        self.runtime = self.trt.Runtime(self._logger())
        self.loaded: list = []  # CachedEngine of every load (built or reused), for reports

    def _logger(self):
        from zvc69_rt.engines.trt import make_logger

        return make_logger(self.trt)

    def describe(self) -> str:
        d = self.manager.device
        return f"tensorrt {self.trt.__version__} on {d.name} (sm {d.cc}), profile {self.profile.name}"

    def load(self, graph: Path) -> TensorRTRunner:
        from zvc69_rt.engines.cache import EngineBuildError, GraphSpec

        spec = GraphSpec.from_path(Path(graph))
        entry = self.cache.get_or_build(spec, self.profile)
        with self.manager.activate():
            engine = self.runtime.deserialize_cuda_engine(entry.plan)
            if engine is None and not entry.built:  # the runtime refused a cached plan: rebuild once
                entry = self.cache.invalidate(entry, "the runtime could not deserialise the cached plan")
                engine = self.runtime.deserialize_cuda_engine(entry.plan)
            if engine is None:
                raise EngineBuildError(f"TensorRT could not deserialise the plan just built for {spec.name}")
        self.loaded.append(entry)
        return TensorRTRunner(self.trt, engine, self.manager, spec.name)

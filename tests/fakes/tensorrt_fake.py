"""A strict fake of the ``tensorrt`` (10.x/11.x) Python API subset ZVC69 calls.

Only the names in ``API`` exist on the module installed as ``tensorrt``; objects use
``__slots__``, so removed APIs (``BuilderFlag``, ``int8_calibrator``, bindings,
``execute_async_v2``, ``device_memory_size``) raise AttributeError. Behaviour the runtime
depends on is modelled, not stubbed:

- the parser reads the real ONNX graph (inputs, dynamic dims; garbage fails to parse);
- a build needs a STRONGLY_TYPED network and profile shapes for every dynamic input
  (min <= opt <= max), and serialises a plan that records the TensorRT version and GPU;
- a plan from another TensorRT version or GPU fails to deserialise (returns None);
- ``execute_async_v3`` needs a pushed context, every tensor address set and input shapes
  inside the profile; it runs the ONNX graph with ONNX Runtime on the simulated device
  memory, so outputs are real numbers to compare.
"""

from __future__ import annotations

import json
import sys
import types
from enum import IntEnum

import numpy as np

from tests.fakes import pycuda_fake

VERSION = {"value": "10.13.0"}
STATS = {"builds": 0, "deserialised": 0}
MAGIC = b"FAKETRTPLAN1\n"


class Logger:
    __slots__ = ("min_severity",)
    INTERNAL_ERROR, ERROR, WARNING, INFO, VERBOSE = range(5)

    def __init__(self, min_severity: int = 2):
        self.min_severity = min_severity


class NetworkDefinitionCreationFlag(IntEnum):
    STRONGLY_TYPED = 1


class MemoryPoolType(IntEnum):
    WORKSPACE = 0


class TensorIOMode(IntEnum):
    NONE = 0
    INPUT = 1
    OUTPUT = 2


class DataType(IntEnum):
    FLOAT = 0
    HALF = 1
    INT8 = 2
    INT32 = 3
    BOOL = 4
    INT64 = 8


_NP = {DataType.FLOAT: np.float32, DataType.HALF: np.float16, DataType.INT8: np.int8,
       DataType.INT32: np.int32, DataType.BOOL: np.bool_, DataType.INT64: np.int64}
_ONNX_TO_DT = {1: DataType.FLOAT, 10: DataType.HALF, 3: DataType.INT8, 6: DataType.INT32, 9: DataType.BOOL,
               7: DataType.INT64}


def nptype(dtype: DataType):
    return _NP[DataType(dtype)]


def _current_gpu() -> tuple[str, str]:
    name, (ma, mi), _ = pycuda_fake.STATE.devices[0]
    return name, f"{ma}.{mi}"


class IHostMemory:
    __slots__ = ("_data",)

    def __init__(self, data: bytes):
        self._data = bytes(data)

    def __bytes__(self) -> bytes:
        return self._data

    @property
    def nbytes(self) -> int:
        return len(self._data)


class ITensor:
    __slots__ = ("dtype", "name", "shape")

    def __init__(self, name: str, shape: tuple, dtype: DataType):
        self.name, self.shape, self.dtype = name, shape, dtype


class INetworkDefinition:
    __slots__ = ("_inputs", "_onnx", "_outputs", "flags")

    def __init__(self, flags: int):
        self.flags = flags
        self._inputs: list[ITensor] = []
        self._outputs: list[ITensor] = []
        self._onnx = b""

    @property
    def num_inputs(self) -> int:
        return len(self._inputs)

    def get_input(self, index: int) -> ITensor:
        return self._inputs[index]


def _tensors(values, skip=()) -> list[ITensor]:
    out = []
    for vi in values:
        if vi.name in skip:
            continue
        dims = tuple(d.dim_value if d.HasField("dim_value") else -1 for d in vi.type.tensor_type.shape.dim)
        out.append(ITensor(vi.name, dims, _ONNX_TO_DT[vi.type.tensor_type.elem_type]))
    return out


class ParserError:
    __slots__ = ("_msg",)

    def __init__(self, msg: str):
        self._msg = msg

    def desc(self) -> str:
        return self._msg

    def __str__(self) -> str:
        return self._msg


class OnnxParser:
    __slots__ = ("_errors", "_network")

    def __init__(self, network: INetworkDefinition, logger: Logger):
        self._network = network
        self._errors: list[ParserError] = []

    def parse(self, model: bytes) -> bool:
        import onnx

        try:
            m = onnx.load_from_string(bytes(model))
            onnx.checker.check_model(m)
        except Exception as exc:  # noqa: BLE001 (any bad model is a parse error, as in TensorRT)
            self._errors.append(ParserError(f"ModelImporter: failed to parse ONNX model: {exc}"))
            return False
        inits = {i.name for i in m.graph.initializer}
        self._network._inputs = _tensors(m.graph.input, inits)
        self._network._outputs = _tensors(m.graph.output)
        self._network._onnx = bytes(model)
        return True

    @property
    def num_errors(self) -> int:
        return len(self._errors)

    def get_error(self, index: int) -> ParserError:
        return self._errors[index]


class IOptimizationProfile:
    __slots__ = ("shapes",)

    def __init__(self):
        self.shapes: dict[str, tuple] = {}

    def set_shape(self, input: str, min, opt, max) -> None:
        lo, op, hi = (tuple(int(x) for x in s) for s in (min, opt, max))
        if not (len(lo) == len(op) == len(hi)) or any(not a <= b <= c for a, b, c in zip(lo, op, hi, strict=True)):
            raise ValueError(f"profile for {input}: need min <= opt <= max, got {lo} {op} {hi}")
        self.shapes[input] = (lo, op, hi)


class ITimingCache:
    __slots__ = ("entries", "header")

    def __init__(self, header: dict, entries: int):
        self.header, self.entries = header, entries

    def serialize(self) -> IHostMemory:
        return IHostMemory(b"FAKETC" + json.dumps({"h": self.header, "n": self.entries}).encode())


class IBuilderConfig:
    __slots__ = ("_cache", "_profiles", "workspace")

    def __init__(self):
        self.workspace = None
        self._profiles: list[IOptimizationProfile] = []
        self._cache: ITimingCache | None = None

    def set_memory_pool_limit(self, pool: MemoryPoolType, pool_size: int) -> None:
        if MemoryPoolType(pool) is not MemoryPoolType.WORKSPACE:
            raise ValueError("only WORKSPACE is modelled")
        self.workspace = int(pool_size)

    def create_timing_cache(self, serialized_timing_cache: bytes) -> ITimingCache:
        data = bytes(serialized_timing_cache)
        name, cc = _current_gpu()
        here = {"trt": VERSION["value"], "gpu": name, "cc": cc}
        if data.startswith(b"FAKETC"):
            d = json.loads(data[6:])
            return ITimingCache(d["h"], d["n"])
        return ITimingCache(here, 0)

    def set_timing_cache(self, cache: ITimingCache, ignore_mismatch: bool) -> bool:
        name, cc = _current_gpu()
        if cache.header != {"trt": VERSION["value"], "gpu": name, "cc": cc} and not ignore_mismatch:
            return False
        self._cache = cache
        return True

    def get_timing_cache(self) -> ITimingCache:
        return self._cache

    def add_optimization_profile(self, profile: IOptimizationProfile) -> int:
        self._profiles.append(profile)
        return len(self._profiles) - 1


class Builder:
    __slots__ = ("logger",)

    def __init__(self, logger: Logger):
        self.logger = logger

    def create_network(self, flags: int = 0) -> INetworkDefinition:
        return INetworkDefinition(int(flags))

    def create_builder_config(self) -> IBuilderConfig:
        return IBuilderConfig()

    def create_optimization_profile(self) -> IOptimizationProfile:
        return IOptimizationProfile()

    def build_serialized_network(self, network: INetworkDefinition, config: IBuilderConfig) -> IHostMemory | None:
        if not network.flags & (1 << int(NetworkDefinitionCreationFlag.STRONGLY_TYPED)):
            raise AssertionError("fake tensorrt: ZVC69 must build STRONGLY_TYPED networks")
        if config.workspace is None or len(config._profiles) != 1 or config._cache is None:
            raise AssertionError("fake tensorrt: expected a workspace limit, one profile and a timing cache")
        prof = config._profiles[0].shapes
        for t in network._inputs:
            if -1 in t.shape and t.name not in prof:
                return None  # real TensorRT: error "dynamic input without a profile" and no plan
        config._cache.entries += 1
        STATS["builds"] += 1
        name, cc = _current_gpu()
        header = {"trt": VERSION["value"], "gpu": name, "cc": cc,
                  "profile": {k: [list(s) for s in v] for k, v in prof.items()}}
        return IHostMemory(MAGIC + json.dumps(header).encode() + b"\n" + network._onnx)


class ICudaEngine:
    __slots__ = ("_io", "_onnx", "_profile")

    def __init__(self, header: dict, onnx_bytes: bytes):
        import onnx

        m = onnx.load_from_string(onnx_bytes)
        inits = {i.name for i in m.graph.initializer}
        self._onnx = onnx_bytes
        self._io = [(t, TensorIOMode.INPUT) for t in _tensors(m.graph.input, inits)] + \
                   [(t, TensorIOMode.OUTPUT) for t in _tensors(m.graph.output)]
        self._profile = {k: tuple(tuple(s) for s in v) for k, v in header["profile"].items()}
        for t, mode in self._io:
            if mode is TensorIOMode.INPUT and t.name not in self._profile:
                self._profile[t.name] = (t.shape, t.shape, t.shape)

    @property
    def num_io_tensors(self) -> int:
        return len(self._io)

    def _t(self, name: str):
        for t, mode in self._io:
            if t.name == name:
                return t, mode
        raise KeyError(name)

    def get_tensor_name(self, index: int) -> str:
        return self._io[index][0].name

    def get_tensor_mode(self, name: str) -> TensorIOMode:
        return self._t(name)[1]

    def get_tensor_dtype(self, name: str) -> DataType:
        return self._t(name)[0].dtype

    def get_tensor_shape(self, name: str) -> tuple:
        return self._t(name)[0].shape

    def get_tensor_profile_shape(self, name: str, profile_index: int) -> list[tuple]:
        if profile_index != 0 or self._t(name)[1] is not TensorIOMode.INPUT:
            raise ValueError("profile shapes exist for inputs of profile 0 only")
        return list(self._profile[name])

    @property
    def device_memory_size_v2(self) -> int:
        return 1 << 20

    def create_execution_context(self) -> IExecutionContext:
        pycuda_fake._need_context("createExecutionContext")
        return IExecutionContext(self)


class IExecutionContext:
    __slots__ = ("_addr", "_engine", "_session", "_shapes")

    def __init__(self, engine: ICudaEngine):
        self._engine = engine
        self._shapes: dict[str, tuple] = {}
        self._addr: dict[str, int] = {}
        self._session = None

    def set_input_shape(self, name: str, shape) -> bool:
        lo, _, hi = self._engine._profile[name]
        shape = tuple(int(s) for s in shape)
        if len(shape) != len(lo) or any(not a <= s <= b for a, s, b in zip(lo, shape, hi, strict=True)):
            return False
        self._shapes[name] = shape
        return True

    def get_tensor_shape(self, name: str) -> tuple:
        t, mode = self._engine._t(name)
        if mode is TensorIOMode.INPUT:
            return self._shapes.get(name, t.shape)
        import onnx

        m = onnx.load_from_string(self._engine._onnx)
        for vi in m.graph.input:
            if vi.name in self._shapes:
                for d, v in zip(vi.type.tensor_type.shape.dim, self._shapes[vi.name], strict=True):
                    d.Clear()
                    d.dim_value = v
        m = onnx.shape_inference.infer_shapes(m, strict_mode=True)
        for vi in m.graph.output:
            if vi.name == name:
                return tuple(d.dim_value if d.HasField("dim_value") else -1 for d in vi.type.tensor_type.shape.dim)
        raise KeyError(name)

    def set_tensor_address(self, name: str, memory: int) -> bool:
        self._engine._t(name)
        self._addr[name] = int(memory)
        return True

    def execute_async_v3(self, stream_handle: int) -> bool:
        pycuda_fake._need_context("enqueueV3")
        import onnxruntime as ort

        if not isinstance(stream_handle, int):
            raise TypeError("execute_async_v3 takes the stream's integer handle")
        feeds = {}
        for t, mode in self._engine._io:
            if t.name not in self._addr:
                return False
            if mode is TensorIOMode.INPUT:
                if t.name not in self._shapes and -1 in t.shape:
                    return False
                shape = self._shapes.get(t.name, t.shape)
                dt = np.dtype(nptype(t.dtype))
                n = int(np.prod(shape)) * dt.itemsize
                feeds[t.name] = np.frombuffer(bytes(pycuda_fake.device_bytes(self._addr[t.name])[:n]),
                                              dt).reshape(shape)
        if self._session is None:
            self._session = ort.InferenceSession(self._engine._onnx, providers=["CPUExecutionProvider"])
        outs = self._session.run(None, feeds)
        for (t, _), arr in zip([x for x in self._engine._io if x[1] is TensorIOMode.OUTPUT], outs, strict=True):
            buf = pycuda_fake.device_bytes(self._addr[t.name])
            raw = np.ascontiguousarray(arr).tobytes()
            if len(raw) > len(buf):
                raise pycuda_fake.LogicError(f"output {t.name} overruns its device buffer")
            buf[: len(raw)] = raw
        pycuda_fake.STATE.record("execute", stream_handle)
        return True


class Runtime:
    __slots__ = ("logger",)

    def __init__(self, logger: Logger):
        self.logger = logger

    def deserialize_cuda_engine(self, serialized_engine: bytes) -> ICudaEngine | None:
        data = bytes(serialized_engine)
        if not data.startswith(MAGIC):
            return None
        head, _, onnx_bytes = data[len(MAGIC):].partition(b"\n")
        try:
            header = json.loads(head)
        except ValueError:
            return None
        name, cc = _current_gpu()
        if (header["trt"], header["gpu"], header["cc"]) != (VERSION["value"], name, cc):
            return None  # real TensorRT: "engine plan file is not compatible with this version/device"
        STATS["deserialised"] += 1
        return ICudaEngine(header, onnx_bytes)


API = ("Logger", "NetworkDefinitionCreationFlag", "MemoryPoolType", "TensorIOMode", "DataType", "nptype",
       "Builder", "OnnxParser", "Runtime", "IHostMemory")


def install(monkeypatch, version: str = "10.13.0") -> types.ModuleType:
    """Put a strict ``tensorrt`` module into sys.modules for one test."""
    VERSION["value"] = version
    STATS.update(builds=0, deserialised=0)
    mod = types.ModuleType("tensorrt")
    me = sys.modules[__name__]
    for name in API:
        setattr(mod, name, getattr(me, name))
    mod.__version__ = version
    monkeypatch.setitem(sys.modules, "tensorrt", mod)
    return mod

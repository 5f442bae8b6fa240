"""TensorRT engine building (installed as ``zvc69_rt.engines``).

Strongly typed networks from the bundle's FP32 / FP16 / INT8-QDQ ONNX graphs (precision
is decided in the graph, never with builder flags: TensorRT 11 removed them), one
optimization profile per preset resolution, a persistent timing cache, and an engine
cache keyed on graph hash + bundle hash + TensorRT version + GPU name/compute capability
+ precision + profile. A stale or foreign engine is rebuilt, never loaded.
tensorrt and pycuda are imported inside functions only.
"""

from zvc69_rt.engines.cache import EngineBuildError, EngineCache, EngineKey, GraphSpec
from zvc69_rt.engines.profiles import PROFILES, Profile, input_shapes, parse_profile

__all__ = ["PROFILES", "EngineBuildError", "EngineCache", "EngineKey", "GraphSpec", "Profile",
           "input_shapes", "parse_profile"]

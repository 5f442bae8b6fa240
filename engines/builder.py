"""One ONNX graph -> one serialized TensorRT plan, with the documented TensorRT 10/11 API.

Strongly typed network (the flag is required on 10.x and accepted-but-ignored on 11.x),
so the precision is exactly the graph's: FP16 graphs carry their Casts, INT8 graphs
their symmetric Q/DQ pairs. No BuilderFlag precision flags, no calibrators.
"""

from __future__ import annotations

Shape = tuple[int, ...]


def build_plan(trt, onnx_bytes: bytes, shapes: dict[str, tuple[Shape, Shape, Shape]], timing_cache: bytes,
               workspace_bytes: int, what: str = "graph") -> tuple[bytes, bytes]:
    """(plan bytes, updated timing cache bytes). Raises EngineBuildError with the parser's messages."""
    from zvc69_rt.engines.cache import EngineBuildError
    from zvc69_rt.engines.trt import make_logger

    logger = make_logger(trt)
    builder = trt.Builder(logger)
    network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx_bytes):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise EngineBuildError(f"TensorRT could not parse {what}: {errors or 'no parser message'}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_bytes))
    cache = config.create_timing_cache(timing_cache)
    if not config.set_timing_cache(cache, False):  # False: refuse a cache from another device/version
        cache = config.create_timing_cache(b"")
        config.set_timing_cache(cache, False)
    profile = builder.create_optimization_profile()
    names = []
    for i in range(network.num_inputs):
        name = network.get_input(i).name
        names.append(name)
        if name not in shapes:
            raise EngineBuildError(f"{what}: no optimization-profile shapes for input {name!r}")
        lo, opt, hi = shapes[name]
        profile.set_shape(name, lo, opt, hi)
    extra = sorted(set(shapes) - set(names))
    if extra:
        raise EngineBuildError(f"{what}: profile names inputs the network does not have: {extra}")
    config.add_optimization_profile(profile)
    plan = builder.build_serialized_network(network, config)
    if plan is None:
        raise EngineBuildError(f"TensorRT failed to build {what} (see the TensorRT log above)")
    return bytes(plan), bytes(config.get_timing_cache().serialize())

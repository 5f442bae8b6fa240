"""Compile every graph of a model bundle for one precision and profile (`zvc69 engines build`)."""

from __future__ import annotations

from pathlib import Path

from zvc69_rt.errors import InputError

PRECISIONS = ("fp16", "int8", "fp32")


def build_bundle(bundle, precision: str = "fp16", profile: str = "1080p", cache_dir: Path | None = None,
                 force: bool = False) -> list[dict]:
    """One row per graph: built or reused, plan path and size, build seconds, device memory
    (the engine's activations + this runner's I/O buffers). Loads each engine once, so a
    plan that the runtime refuses is rebuilt here too."""
    from zvc69_rt.backends.tensorrt import TensorRTBackend

    if precision not in PRECISIONS:
        raise InputError(f"--precision {precision!r}: use fp16, int8 or fp32")
    from zvc69_rt.engines.onnx_support import require_parsable

    require_parsable(bundle)
    be = TensorRTBackend(cache_dir=cache_dir, profile=profile)
    rows = []
    for name, variants in sorted(bundle.manifest["graphs"].items()):
        if precision not in variants:
            rows.append({"graph": name, "status": f"skipped (no {precision} variant)"})
            continue
        path = bundle.graph_path(name, precision)
        if force:
            from zvc69_rt.engines.cache import GraphSpec

            be.cache.get_or_build(GraphSpec.from_path(path), be.profile, force=True)
        runner = be.load(path)
        entry = be.loaded[-1]
        activations = int(getattr(runner.engine, "device_memory_size_v2", 0) or 0)
        rows.append({
            "graph": name, "status": "built" if entry.built else "cached",
            "reason": entry.rebuilt_reason if entry.built else "", "plan": str(entry.plan_path),
            "plan_mib": len(entry.plan) / 2**20, "build_s": entry.build_seconds,
            "device_mib": (activations + runner.device_bytes) / 2**20,
        })
        runner.close()
    return rows

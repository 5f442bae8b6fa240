"""Pipelined vs sequential on the same StagedEncoder and frames: the figures behind
`zvc69 bench pipeline` (the CLI hook lives with the codec's bench module).

efficiency = fps_pipelined x max(mean stage time): 1.0 means the slowest stage is busy
all the time. Two versions are reported because on a small CPU the stages slow each
other down when they overlap (they share cores): ``efficiency`` uses the stage times
measured inside the pipelined run (how well the scheduler keeps its bottleneck busy),
``efficiency_isolated`` the stage times of the sequential run (how close the pipeline
gets to the ideal of free overlap).
"""

from __future__ import annotations

import dataclasses
import resource
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from zvc69_rt.frame import Frame
from zvc69_rt.pipeline.config import PipelineConfig
from zvc69_rt.pipeline.scheduler import PipelinedEncoder
from zvc69_rt.pipeline.stages import StagedEncoder


def packet_identity(p: Any) -> Any:
    """What must match between the two paths: every header field and the payload bytes."""
    if dataclasses.is_dataclass(p):
        return dataclasses.astuple(p)
    return bytes(p)


def peak_rss_mib() -> float:
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb / (1 << 20) if sys.platform == "darwin" else kb / 1024


def run_sequential(staged: StagedEncoder, frames: Sequence[Frame]) -> tuple[list, dict[str, float], float]:
    """Packets, mean seconds per stage, wall seconds."""
    tot = {"preprocess": 0.0, "infer": 0.0, "entropy_code": 0.0}
    out = []
    t_start = time.perf_counter()
    for f in frames:
        t0 = time.perf_counter()
        w = staged.preprocess(f)
        t1 = time.perf_counter()
        w = staged.infer(w)
        t2 = time.perf_counter()
        out.append(staged.entropy_code(w))
        t3 = time.perf_counter()
        tot["preprocess"] += t1 - t0
        tot["infer"] += t2 - t1
        tot["entropy_code"] += t3 - t2
    out.extend(staged.flush())
    wall = time.perf_counter() - t_start
    n = max(1, len(frames))
    return out, {k: v / n for k, v in tot.items()}, wall


def run_pipelined(staged: StagedEncoder, frames: Sequence[Frame], config: PipelineConfig,
                  **kwargs) -> tuple[list, Any, float]:
    """Packets, PipelineStats, wall seconds. Submits and drains the way a live encoder does."""
    out = []
    t_start = time.perf_counter()
    enc = PipelinedEncoder(staged, config, **kwargs)
    try:
        for f in frames:
            enc.submit(f)
            while (p := enc.try_recv()) is not None:
                out.append(p)
        out.extend(enc.flush())
    finally:
        enc.close()
    wall = time.perf_counter() - t_start
    return out, enc.stats(), wall


def benchmark_pipeline(make_staged: Callable[[], StagedEncoder], frames: Sequence[Frame],
                       config: PipelineConfig | None = None, warmup: int = 2,
                       identity: Callable[[Any], Any] = packet_identity, **kwargs) -> dict:
    """Run sequential then pipelined on fresh encoders; return the benchmark figures.

    ``make_staged`` must return a fresh encoder each call (P-frames carry state).
    ``warmup`` frames go through a throwaway encoder first (JIT compiles, session warm-up).
    """
    config = (config or PipelineConfig.realtime_1080p()).validate()
    frames = list(frames)
    if warmup and frames:
        run_sequential(make_staged(), frames[:warmup])
    seq_out, seq_stage_s, seq_wall = run_sequential(make_staged(), frames)
    pip_out, stats, pip_wall = run_pipelined(make_staged(), frames, config, **kwargs)
    n = len(frames)
    fps_seq = n / seq_wall if seq_wall > 0 else 0.0
    fps_pip = n / pip_wall if pip_wall > 0 else 0.0
    isolated_bottleneck = max(seq_stage_s.values(), default=0.0)
    pip_bottleneck = stats.bottleneck_ms / 1e3
    e2e = stats.stages["end_to_end"]
    return {
        "frames": n,
        "fps_pipelined": fps_pip,
        "fps_sequential": fps_seq,
        "speedup": fps_pip / fps_seq if fps_seq else 0.0,
        "efficiency": fps_pip * pip_bottleneck,
        "efficiency_isolated": fps_pip * isolated_bottleneck,
        "identical": [identity(p) for p in seq_out] == [identity(p) for p in pip_out],
        "stages_sequential_ms": {k: 1e3 * v for k, v in seq_stage_s.items()},
        "stages_pipelined_ms": {k: dataclasses.asdict(v) for k, v in stats.stages.items()},
        "latency_mean_ms": e2e.mean_ms,
        "latency_p99_ms": e2e.p99_ms,
        "target_latency_ms": config.target_latency_ms,
        "pools": stats.pools,
        "peak_rss_mib": peak_rss_mib(),
        "config": config.to_dict(),
    }


def synthetic_frames(width: int, height: int, n: int, seed: int = 0) -> list[Frame]:
    """A moving random texture (incompressible-ish: a worst case for entropy coding)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (height, width), dtype=np.uint8)
    ch, cw = Frame.chroma_shape(width, height)
    return [Frame(y=np.roll(base, 4 * i, axis=1), u=np.full((ch, cw), 128, np.uint8),
                  v=np.full((ch, cw), 128, np.uint8), pts=i) for i in range(n)]


def codec_benchmark(width: int = 1920, height: int = 1080, frames: int = 8, preset: str = "realtime_1080p",
                    threads: int | None = None, precision: str = "fp32") -> dict:
    """The real Encoder (shipped bundle, ONNX Runtime), intra frames, sequential vs pipelined."""
    import warnings

    from zvc69_rt.backends.onnxruntime import OnnxRuntimeBackend
    from zvc69_rt.codec.api import EncoderConfig
    from zvc69_rt.codec.encoder import Encoder
    from zvc69_rt.codec.runtime import GRAPHS
    from zvc69_rt.models.bundle import ModelBundle

    bundle = ModelBundle.load()
    be = OnnxRuntimeBackend(threads=threads)
    runners = {g: be.load(bundle.graph_path(g, precision)) for g in GRAPHS}
    cfg = EncoderConfig(width=width, height=height, gop=1, precision=precision)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return benchmark_pipeline(lambda: Encoder(cfg, bundle=bundle, runners=runners),
                                  synthetic_frames(width, height, frames), PipelineConfig.preset(preset), warmup=1)


if __name__ == "__main__":  # python -m zvc69_rt.pipeline.benchmark [W H N PRESET]
    import json

    a = sys.argv[1:]
    r = codec_benchmark(int(a[0]), int(a[1]), int(a[2]), a[3]) if a else codec_benchmark()
    print(json.dumps(r))

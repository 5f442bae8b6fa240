"""PipelineConfig presets and validation; the benchmark figures on a synthetic encoder."""

from __future__ import annotations

import pytest

from tests.fakes.staged import HashStaged, make_frames
from zvc69_rt.errors import InputError
from zvc69_rt.pipeline import PRESETS, PipelineConfig
from zvc69_rt.pipeline.benchmark import benchmark_pipeline


def test_presets_are_valid_and_ordered_by_intent():
    cfgs = {n: PipelineConfig.preset(n) for n in PRESETS}
    for c in cfgs.values():
        assert c.validate() is c and c.buffers == c.queue_depth + 2
    assert cfgs["low_latency"].queue_depth >= 3  # the least that overlaps three stages
    assert cfgs["low_latency"].target_latency_ms < cfgs["realtime_1080p"].target_latency_ms
    assert cfgs["high_throughput"].queue_depth > cfgs["realtime_1080p"].queue_depth
    assert cfgs["realtime_1080p"].max_pool_bytes > cfgs["realtime_720p"].max_pool_bytes
    for name in ("realtime_720p", "realtime_1080p", "low_latency"):  # one estimate, no block matching
        assert cfgs[name].motion_candidates == 1 and not cfgs[name].block_search
    assert cfgs["high_throughput"].block_search and PipelineConfig().block_search
    assert PipelineConfig().motion_candidates is None  # the codec's own default (inter.RD_CANDIDATES)
    with pytest.raises(InputError, match="unknown pipeline preset 'fast'"):
        PipelineConfig.preset("fast")


@pytest.mark.parametrize("field,value", [("queue_depth", 0), ("num_workers", 1000), ("num_workers", True),
                                         ("target_latency_ms", 0), ("max_pool_bytes", -1),
                                         ("pool_buffers", -2), ("block_search", 1),
                                         ("motion_candidates", 0), ("motion_candidates", True)])
def test_validation_names_the_field(field, value):
    with pytest.raises(InputError, match=field):
        PipelineConfig(**{field: value}).validate()


@pytest.mark.timeout(30)
def test_benchmark_figures():
    frames = make_frames(30)
    r = benchmark_pipeline(lambda: HashStaged(jitter_ms=4.0), frames, PipelineConfig(queue_depth=6, num_workers=3))
    assert r["identical"] is True and r["frames"] == 30
    # Sleeps overlap even on a busy 2-core box: three stages of ~2 ms mean each.
    assert r["fps_pipelined"] > r["fps_sequential"]
    assert 0 < r["efficiency"] <= 1.2 and 0 < r["efficiency_isolated"] <= 1.2
    assert set(r["stages_sequential_ms"]) == {"preprocess", "infer", "entropy_code"}
    assert r["latency_p99_ms"] >= r["latency_mean_ms"] > 0 and r["peak_rss_mib"] > 0


def test_benchmark_detects_a_mismatch():
    calls = iter(range(10))

    class Drifting(HashStaged):  # the second (pipelined) instance codes differently
        def __init__(self):
            super().__init__()
            self.k = next(calls)

        def entropy_code(self, work):
            return super().entropy_code(work) + (b"x" if self.k == 2 else b"")

    r = benchmark_pipeline(Drifting, make_frames(5), PipelineConfig(queue_depth=2, num_workers=1))
    assert r["identical"] is False

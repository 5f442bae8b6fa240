"""Realtime pipeline: frame pools, presets, the pipelined scheduler and its stats."""

from zvc69_rt.pipeline.config import PRESETS, PipelineConfig
from zvc69_rt.pipeline.pool import FramePool, PooledBuffer, PoolStats
from zvc69_rt.pipeline.scheduler import PipelinedEncoder
from zvc69_rt.pipeline.stages import StagedEncoder, encode_sequential
from zvc69_rt.pipeline.stats import PipelineStats, StageSummary

__all__ = [
    "PRESETS", "FramePool", "PipelineConfig", "PipelineStats", "PipelinedEncoder", "PoolStats",
    "PooledBuffer", "StageSummary", "StagedEncoder", "encode_sequential",
]

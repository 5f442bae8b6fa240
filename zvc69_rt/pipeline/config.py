"""PipelineConfig: how much the pipelined encoder overlaps, and its presets.

``queue_depth`` bounds the frames in flight between ``submit`` and a finished packet
(memory and latency cap: ``submit`` blocks beyond it). ``num_workers`` is the thread
count of each parallel-safe CPU role (preprocess, entropy coding); inference always has
exactly one thread because P-frames depend on the previous reconstruction.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass

from zvc69_rt.errors import InputError

PRESETS = ("realtime_720p", "realtime_1080p", "low_latency", "high_throughput")


def _cores() -> int:
    return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class PipelineConfig:
    queue_depth: int = 6  # frames in flight (submit blocks beyond this)
    num_workers: int = 2  # threads per parallel CPU role
    enable_async_transfers: bool = True  # overlap H2D/D2H with inference on CUDA streams
    target_latency_ms: float = 100.0  # reported against p99 end-to-end latency
    pool_buffers: int = 0  # pooled frame buffers (0 = queue_depth + 2)
    max_pool_bytes: int = 1 << 30  # cap on pinned/pooled host memory across pools
    motion_candidates: int | None = None  # P-frame motion fields coded in full to pick one (1 = trust
    #                                       the estimate; None = the codec's default, inter.RD_CANDIDATES)
    block_search: bool = True  # also try block-matching motion fields (codec/motion_search.py; ~0.13 s
    #                            of CPU per 1080p P-frame on this 2-core machine, plus one flow-network run)

    def validate(self) -> PipelineConfig:
        for name in ("queue_depth", "num_workers"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or not 1 <= v <= 256:
                raise InputError(f"pipeline config: {name} must be an integer in 1..256, got {v!r}")
        if not isinstance(self.pool_buffers, int) or not 0 <= self.pool_buffers <= 1024:
            raise InputError(f"pipeline config: pool_buffers must be in 0..1024, got {self.pool_buffers!r}")
        if not self.target_latency_ms > 0:
            raise InputError(f"pipeline config: target_latency_ms must be > 0, got {self.target_latency_ms!r}")
        mc = self.motion_candidates
        if mc is not None and (not isinstance(mc, int) or isinstance(mc, bool) or not 1 <= mc <= 8):
            raise InputError(f"pipeline config: motion_candidates must be in 1..8 (or null: the default), got {mc!r}")
        if not isinstance(self.block_search, bool):
            raise InputError(f"pipeline config: block_search must be true or false, got {self.block_search!r}")
        if not isinstance(self.max_pool_bytes, int) or self.max_pool_bytes <= 0:
            raise InputError(f"pipeline config: max_pool_bytes must be a positive integer, got {self.max_pool_bytes!r}")
        return self

    @property
    def buffers(self) -> int:
        """Pooled frame buffers: every frame in flight plus one being filled and one draining."""
        return self.pool_buffers or self.queue_depth + 2

    def to_dict(self) -> dict:
        return asdict(self)

    # -- presets (the spec's names) -------------------------------------------------
    @classmethod
    def realtime_720p(cls) -> PipelineConfig:
        """30 fps at 1280x720: enough depth to overlap three stages with slack; one motion
        field per P-frame (the RD search would triple P-frame inference) and no block matching."""
        return cls(queue_depth=6, num_workers=min(4, _cores()), target_latency_ms=100.0,
                   max_pool_bytes=256 << 20, motion_candidates=1, block_search=False)

    @classmethod
    def realtime_1080p(cls) -> PipelineConfig:
        """30 fps at 1920x1080: same shape as 720p, more memory for the larger frames."""
        return cls(queue_depth=6, num_workers=min(4, _cores()), target_latency_ms=100.0,
                   max_pool_bytes=512 << 20, motion_candidates=1, block_search=False)

    @classmethod
    def low_latency(cls) -> PipelineConfig:
        """Interactive use: three frames in flight is the least that still overlaps
        preprocess, inference and entropy coding."""
        return cls(queue_depth=3, num_workers=min(2, _cores()), target_latency_ms=50.0,
                   max_pool_bytes=256 << 20, motion_candidates=1, block_search=False)

    @classmethod
    def high_throughput(cls) -> PipelineConfig:
        """Offline transcoding: deep queues absorb stage jitter; latency is secondary."""
        return cls(queue_depth=16, num_workers=max(2, _cores()), target_latency_ms=1000.0,
                   max_pool_bytes=2 << 30)

    @classmethod
    def preset(cls, name: str) -> PipelineConfig:
        if name not in PRESETS:
            raise InputError(f"unknown pipeline preset {name!r}: use one of {', '.join(PRESETS)}")
        return getattr(cls, name)()

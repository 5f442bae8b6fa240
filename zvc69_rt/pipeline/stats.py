"""Per-stage timing for the pipelined encoder: bounded sample windows, mean and p99."""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import asdict, dataclass, field

import numpy as np

WINDOW = 4096  # samples kept per stage: bounded memory on endless streams


@dataclass(frozen=True)
class StageSummary:
    count: int
    mean_ms: float
    p99_ms: float
    max_ms: float


class StageTimer:
    """Durations of one stage (seconds in, milliseconds out); thread-safe."""

    def __init__(self, window: int = WINDOW):
        self._samples: deque[float] = deque(maxlen=window)
        self._count = 0
        self._total = 0.0
        self._lock = threading.Lock()

    def add(self, seconds: float) -> None:
        with self._lock:
            self._samples.append(seconds)
            self._count += 1
            self._total += seconds

    def summary(self) -> StageSummary:
        with self._lock:
            if not self._count:
                return StageSummary(0, 0.0, 0.0, 0.0)
            a = np.fromiter(self._samples, dtype=np.float64)
            return StageSummary(self._count, 1e3 * self._total / self._count,
                                1e3 * float(np.percentile(a, 99)), 1e3 * float(a.max()))


@dataclass(frozen=True)
class PipelineStats:
    frames: int  # packets finished
    elapsed_s: float  # first submit to last finished packet
    fps: float
    stages: dict[str, StageSummary]  # preprocess / infer / entropy_code / end_to_end
    pools: dict[str, dict] = field(default_factory=dict)
    target_latency_ms: float = 0.0

    @property
    def bottleneck_ms(self) -> float:
        """Mean time of the slowest stage: the best frame interval a pipeline can reach."""
        return max((s.mean_ms for k, s in self.stages.items() if k != "end_to_end"), default=0.0)

    @property
    def efficiency(self) -> float:
        """fps x max(stage time): 1.0 means the slowest stage never waits."""
        return self.fps * self.bottleneck_ms / 1e3

    def to_dict(self) -> dict:
        d = asdict(self)
        d["bottleneck_ms"] = self.bottleneck_ms
        d["efficiency"] = self.efficiency
        return d
